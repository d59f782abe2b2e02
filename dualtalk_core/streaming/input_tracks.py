"""The engine's inputs on one time grid: both voices, the partner's face, and the anchor t0.

The first audio chunk of either speaker (or `anchor`) fixes t0; from then on every stamp is
placed relative to it, so both voices and the face share one 16 kHz / 25 fps grid. A partner
face that arrives before the anchor is the best guess of the face to hold until the next one.
"""
from __future__ import annotations

import collections
import logging

import numpy as np

from dualtalk_core import rigs
from dualtalk_core.streaming.stamp_gate import StampGate
from dualtalk_core.streaming.timelines import (AudioInputStats, AudioTimeline, FaceInputStats,
                                               FaceTimeline)
from dualtalk_core.units import FRAME_S, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME

# A stamp further than this ahead of where its input was expected is held until the input
# confirms it (`stamp_gate`): a real pause, or a glitch that would blank the good input after it.
JUMP_S = 0.25
# Arrival lateness kept per audio input: about 8 s of 32 ms chunks, what a derived output delay
# is sized from (`arrival_lateness_s`).
LATENESS_CHUNKS = 256
# Chunks of a stream's first second are not counted: they pay for start-up (the source's and
# the receiver's first messages, threads warming up), not for how the source delivers.
LATENESS_FROM_S = 1.0
MAX_UNKNOWN_NAMES = 64  # unknown partner-face names kept for diagnostics; the rest are counted

log = logging.getLogger(__name__)


class InputTracks:
    """Own audio, partner audio and partner faces of one stream, held in fixed memory.

    Each audio timeline holds `capacity_samples`; the face timeline as many frames. Indexes are
    grid samples (16 kHz) or frames (25 fps) since the anchor.
    """

    def __init__(self, rig: rigs.Rig, capacity_samples: int, tolerance_ms: float) -> None:
        self.rig = rig
        tolerance_s = tolerance_ms / 1000.0
        self.self_audio = AudioTimeline(capacity_samples, tolerance_s)
        self.partner_audio = AudioTimeline(capacity_samples, tolerance_s)
        self.faces = FaceTimeline(capacity_samples // SAMPLES_PER_FRAME + 1, rig.neutral_array())
        # (own audio, partner audio, partner face): items (samples, rate, t_rel, received_s)
        # or (row, t_rel)
        self._gates: tuple[StampGate, StampGate, StampGate] = (
            StampGate(JUMP_S), StampGate(JUMP_S), StampGate(JUMP_S))
        self.reset()

    @property
    def audio(self) -> tuple[AudioTimeline, AudioTimeline]:
        """(own, partner): the order of the model's inputs."""
        return self.self_audio, self.partner_audio

    def reset(self) -> None:
        """Forget the stream and its counters; the next chunk (or `anchor`) anchors anew."""
        self.t0: float | None = None  # the anchor: time of grid sample 0
        self._pending_face: np.ndarray | None = None  # (C,) a face pushed before any audio
        self.face_stats = FaceInputStats()
        self._timed_out: collections.deque[tuple[int, int]] = collections.deque(maxlen=8)
        self._names_warned = False
        # (own, partner): seconds from a chunk's first sample to its arrival, for chunks that
        # continue received audio (`_note_lateness`)
        self._lateness: tuple[collections.deque[float], collections.deque[float]] = (
            collections.deque(maxlen=LATENESS_CHUNKS), collections.deque(maxlen=LATENESS_CHUNKS))
        for gate in self._gates:
            gate.reset()
            gate.outliers = 0
        for track in self.audio:
            track.reset()
            track.stats = AudioInputStats()
            track.heard.reset()  # kept through a stall's restart, not through a reset
        self.faces.reset()

    def anchor(self, t: float) -> None:
        """Fix t0 at `t` unless anchored already; the face held so far starts frame 0."""
        if self.t0 is None:
            self.t0 = t
            self.faces.reset(0, self._pending_face)

    def push_audio(self, which: int, mono: np.ndarray, rate_hz: int, t: float,
                   received_s: float | None = None) -> None:
        """(N,) float32 samples at `rate_hz` of speaker `which` (0 own, 1 partner), first
        sample at time `t`, received at `received_s` (None: as soon as it was captured); the
        first chunk of either speaker anchors the stream."""
        self.anchor(t)
        assert self.t0 is not None
        track, gate, t_rel = self.audio[which], self._gates[which], t - self.t0
        expected = track.expected_s() if track.stats.chunks else None
        for item in gate.admit((mono, rate_hz, t_rel, received_s), t_rel,
                               t_rel + len(mono) / rate_hz, expected):
            self._file_audio(which, *item, filed_s=received_s)
        self._count_gates()

    def _file_audio(self, which: int, mono: np.ndarray, rate_hz: int, t_rel: float,
                    received_s: float | None, filed_s: float | None = None) -> None:
        """File a chunk received at `received_s` and let through the stamp gate at `filed_s`
        (None: as received); frames waited for it until then."""
        assert self.t0 is not None
        track = self.audio[which]
        track.last_fill = None
        real_end, chunks = track.real_end, track.stats.chunks
        track.push(mono, rate_hz, t_rel)
        if received_s is not None and track.stats.chunks > chunks:
            self._note_lateness(which, t_rel, received_s - self.t0, real_end)
        if track.last_fill is not None:
            # The input resumed after a pause: frames needing the silence before it waited for
            # it, except where that silence lies after the arrival (audio published ahead).
            start, end = track.last_fill
            if received_s is not None:
                filed = received_s if filed_s is None else max(received_s, filed_s)
                end = min(end, round((filed - self.t0) * SAMPLE_RATE_HZ))
            if end > start:
                self._note_wait(start, end)

    def _note_lateness(self, which: int, t_rel: float, received_rel: float,
                       real_end: int) -> None:
        """Record how late an accepted chunk arrived, if it continues the received audio: what
        a source's chunking and transport cost. Not after a pause, a hole or a dropped backlog
        (the audio before it was not received): a stall is not the source's usual lateness."""
        tolerance = self.audio[which].tolerance_s
        if t_rel >= LATENESS_FROM_S and abs(t_rel - real_end / SAMPLE_RATE_HZ) <= tolerance:
            self._lateness[which].append(received_rel - t_rel)

    def arrival_lateness_s(self) -> list[float]:
        """Recent arrival lateness of both audio inputs (s; < 0: published ahead)."""
        return [*self._lateness[0], *self._lateness[1]]

    def push_face(self, row: np.ndarray, names: rigs.ChannelMap, t: float, emitted: int) -> None:
        """(C,) rig-order partner face at time `t`, mapped by `names`; `emitted` frames are out
        (a face for one of them is late, kept only as context for later windows)."""
        self._note_names(names)
        if self.t0 is None:  # before any audio: the best guess of the face to hold
            self._pending_face = row
            self.face_stats.faces += 1
            return
        t_rel, last = t - self.t0, self.faces.last_t
        expected = None if last is None else last + FRAME_S
        for item in self._gates[2].admit((row, t_rel), t_rel, t_rel + FRAME_S, expected):
            self.faces.push(*item, emitted, self.face_stats)
        self._count_gates()

    def release_due(self, now_rel_s: float, emitted: int) -> None:
        """File held input whose stamp the clock has reached (nothing disowned it)."""
        assert self.t0 is not None
        self._release([gate.release_due(now_rel_s) for gate in self._gates], emitted,
                      filed_s=self.t0 + now_rel_s)

    def _release(self, released: list[list], emitted: int, filed_s: float | None = None) -> None:
        for which in (0, 1):
            for item in released[which]:
                self._file_audio(which, *item, filed_s=filed_s)
        for row, t_rel in released[2]:
            self.faces.push(row, t_rel, emitted, self.face_stats)
        self._count_gates()

    def _count_gates(self) -> None:
        for stats, gate in zip((track.stats for track in self.audio), self._gates):
            stats.outlier_chunks, stats.held_chunks = gate.outliers, gate.holding
        face = self._gates[2]
        self.face_stats.outlier_faces, self.face_stats.held_faces = face.outliers, face.holding

    def _note_names(self, cmap: rigs.ChannelMap) -> None:
        """Record unknown names (a bounded list) and missing channels; warn once a stream."""
        stats = self.face_stats
        if cmap.unknown and not stats.unknown_names_truncated:
            known = set(stats.unknown_names)
            if not known.issuperset(cmap.unknown):
                kept = sorted(known.union(cmap.unknown))
                stats.unknown_names = tuple(kept[:MAX_UNKNOWN_NAMES])
                stats.unknown_names_truncated = len(kept) > MAX_UNKNOWN_NAMES
        if (cmap.unknown or cmap.missing) and not self._names_warned:
            self._names_warned = True
            log.warning("partner face: %d name(s) unknown to rig %s %s; %d channel(s) missing "
                        "(neutral); further changes only in the stats", len(cmap.unknown),
                        self.rig.name, list(cmap.unknown[:5]), len(cmap.missing))
        stats.missing_channels = cmap.missing

    # ------------------------------------------------------------------ filling and reading
    def available(self) -> int:
        """Grid samples [0, available) written on both audio inputs."""
        return min(track.head for track in self.audio)

    def fill_overdue(self, due: int) -> None:
        """Silence on each audio input up to grid sample `due`: its audio is too late. The
        range is remembered: frames that needed it waited input_timeout_ms (`waited`)."""
        for track in self.audio:
            if track.head < due:
                track.end_segment()
                start = track.head
                track.fill_to(due)
                self._note_wait(start, due)

    def _note_wait(self, start: int, end: int) -> None:
        """Grid samples [start, end) were filled with silence after waiting for audio."""
        if self._timed_out and self._timed_out[-1][1] >= start >= self._timed_out[-1][0]:
            last_start, last_end = self._timed_out.pop()  # one continuous gap
            start, end = last_start, max(last_end, end)
        self._timed_out.append((start, end))

    def waited(self, need: int) -> bool:
        """Whether a frame needing grid samples [0, need) waited for missing audio: its last
        needed sample lies in silence written after a timeout or when an input resumed after
        a pause (not silence for an absent input, which nothing waits for)."""
        return any(start < need <= end for start, end in self._timed_out)

    def fill_absent(self, absent_before: int, now: int) -> None:
        """Silence on an input whose received audio ends before `absent_before` (it has sent
        nothing for a while), as far as the other input has arrived and never past `now`:
        frames then wait only for the input that is live."""
        for track, other in ((self.self_audio, self.partner_audio),
                             (self.partner_audio, self.self_audio)):
            target = min(other.head, now)
            if track.real_end < absent_before and other.real_end >= absent_before \
                    and track.head < target:
                track.end_segment()
                track.fill_to(target)

    def end(self, emitted: int) -> None:
        """End of stream: file held input, write pending resampler tails, then pad the shorter
        input with silence to the longer one, as offline processing of the clip does."""
        self._release([gate.release_all() for gate in self._gates], emitted)
        for track in self.audio:
            track.end_segment()
        end = max(track.head for track in self.audio)
        for track in self.audio:
            track.fill_to(end)

    def keep_from(self, sample: int) -> None:
        """Nothing before grid `sample` (a frame boundary) is read again: reusable memory."""
        for track in self.audio:
            track.keep_from = sample
        self.faces.keep_from = sample // SAMPLES_PER_FRAME

    def restart_at(self, sample: int) -> None:
        """After a stall skip: empty the inputs, which continue at grid `sample` (a frame
        boundary) holding the newest face; counters are kept."""
        for track in self.audio:
            track.reset(sample)
        self.faces.reset(sample // SAMPLES_PER_FRAME, self.faces.latest())

    def read_audio(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid samples [start, end) of (own, partner) -> two (end - start,) float32 copies."""
        own, other = (track.read(start, end) for track in self.audio)
        return own, other

    def read_faces(self, first: int, n: int) -> np.ndarray:
        """Partner faces of frames [first, first + n) -> (n, C), held where none arrived."""
        return self.faces.window(first, n)

    def has_face(self, k: int) -> bool:
        """Whether frame k got a partner face of its own (else one is held)."""
        return self.faces.has(k)
