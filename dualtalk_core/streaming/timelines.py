"""Inputs placed on the stream's time grids: audio samples at 16 kHz, partner faces at 25 fps.

The streaming engine keeps one timeline per input. Each one files what arrives by its stamp,
counts what it had to drop or fill (duplicates, late or out-of-order input, gaps), and holds a
bounded, preallocated buffer, so memory stays fixed however long the stream runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dualtalk_core.audio.resampling import StreamResampler
from dualtalk_core.model.waveform_norm import RunningWaveformStats
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ


@dataclass
class AudioInputStats:
    """Counters of one audio input of the streaming engine (see `AudioTimeline.push`)."""

    chunks: int = 0  # accepted, fully or after trimming an overlap
    resampled_chunks: int = 0  # accepted chunks that were not at 16 kHz
    duplicate_chunks: int = 0  # dropped: their time was already covered by received audio
    out_of_order_chunks: int = 0  # dropped: stamped before an already accepted chunk
    late_chunks: int = 0  # dropped: their time had been given up and filled with silence
    trimmed_chunks: int = 0  # accepted after dropping a part that overlapped earlier audio
    overflow_chunks: int = 0  # dropped: more than the buffer holds is waiting to be consumed
    outlier_chunks: int = 0  # dropped: stamped far ahead of the stream, then disowned by it
    held_chunks: int = 0  # held now: stamped far ahead, waiting for the stream to confirm it
    clipped_chunks: int = 0  # given with float samples beyond full scale: clipped to +-1
    gaps_filled: int = 0  # times silence was inserted (a stamp jump or an input timeout)
    gap_fill_s: float = 0.0  # seconds of silence inserted

    def outcomes(self) -> int:
        """Chunks given to the engine so far: each is counted in exactly one outcome."""
        return (self.chunks + self.duplicate_chunks + self.out_of_order_chunks
                + self.late_chunks + self.overflow_chunks + self.outlier_chunks
                + self.held_chunks)


class AudioTimeline:
    """One audio input placed on the stream's 16 kHz sample grid by its chunks' stamps.

    Sample n of the grid is at `n / 16000` s after the stream's anchor. Chunks continuing the
    previous one (stamp within `tolerance_s` of where it ended) go through one StreamResampler
    without a seam; a later stamp inserts silence; an earlier one drops the overlap. Written
    samples never change, so a frame computed from them stays valid. Memory: one preallocated
    buffer of `capacity` samples; samples before `keep_from` (set by the engine) are reusable.
    """

    def __init__(self, capacity: int, tolerance_s: float) -> None:
        self.capacity = int(capacity)
        self.tolerance_s = float(tolerance_s)
        self.stats = AudioInputStats()
        # Every sample written since the stream began (silence fills too): the running
        # statistics a wav2vec2 model normalises this voice with (`model.waveform_norm`).
        self.heard = RunningWaveformStats()
        self.last_fill: tuple[int, int] | None = None  # the latest silence written (grid)
        # Written now, not as the stream first reaches each page (np.zeros maps pages lazily):
        # the memory is resident from the start instead of growing over the first ~40 s, and
        # no page fault lands on a streaming step.
        self._buf = np.full(self.capacity, 0.0, dtype=np.float32)
        self.reset()

    def reset(self, start: int = 0) -> None:
        """Empty the timeline; the next sample written goes to grid index `start`."""
        self.base = start  # grid index of _buf[0]
        self.head = start  # grid index one past the last written sample
        self.keep_from = start  # the engine still needs samples from here on
        self._real_end = start  # end of the last received (not silence-filled) sample
        self._resampler: StreamResampler | None = None
        self._seg_t0_s = 0.0  # stamp of the current segment's first input sample
        self._seg_n_in = 0  # input samples fed to the current segment
        self._last_stamp_s = -math.inf
        self._in_gap = False

    def push(self, mono: np.ndarray, rate_hz: int, t_rel_s: float) -> None:
        """Place a (n,) float32 chunk at `rate_hz` whose first sample is `t_rel_s` after anchor."""
        if t_rel_s < self._last_stamp_s - self.tolerance_s:
            self.stats.out_of_order_chunks += 1
            return
        expected_s = self.expected_s()
        overlap_s = expected_s - t_rel_s
        if overlap_s > self.tolerance_s:
            skip = round(overlap_s * rate_hz)
            if skip >= len(mono):
                self._count_dropped(t_rel_s + len(mono) / rate_hz)
                return
            mono, self.stats.trimmed_chunks = mono[skip:], self.stats.trimmed_chunks + 1
        elif overlap_s < -self.tolerance_s:
            self.end_segment()
            if not self.fill_to(round(t_rel_s * SAMPLE_RATE_HZ)):
                self.stats.overflow_chunks += 1
                return
        if self._resampler is None or self._resampler.rate_hz != rate_hz:
            self.end_segment()
            self._resampler = StreamResampler(rate_hz)
            self._seg_t0_s, self._seg_n_in = max(t_rel_s, expected_s), 0
        if not self._write(self._resampler.process(mono)):
            self.stats.overflow_chunks += 1
            self._resampler = None  # the segment is broken: the next chunk starts a new one
            return
        self._seg_n_in += len(mono)
        self._last_stamp_s = max(self._last_stamp_s, t_rel_s)
        self._real_end, self._in_gap = self.head, False
        self.stats.chunks += 1
        self.stats.resampled_chunks += int(rate_hz != SAMPLE_RATE_HZ)

    @property
    def real_end(self) -> int:
        """Grid index one past the last received (not silence-filled) sample."""
        return self._real_end

    def expected_s(self) -> float:
        """Where the next chunk should start: the current segment's end, else the head."""
        if self._resampler is not None:
            return self._seg_t0_s + self._seg_n_in / self._resampler.rate_hz
        return self.head / SAMPLE_RATE_HZ

    def _count_dropped(self, end_s: float) -> None:
        if end_s <= self._real_end / SAMPLE_RATE_HZ + self.tolerance_s:
            self.stats.duplicate_chunks += 1
        else:
            self.stats.late_chunks += 1

    def end_segment(self) -> None:
        """The input stopped or jumped: write the resampler's pending tail (zero-padded)."""
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._resampler = None
            if self._write(tail):
                self._real_end = self.head

    def fill_to(self, index: int) -> bool:
        """Silence up to grid `index` (a gap); False when it does not fit in the buffer."""
        if index <= self.head:
            return True
        n, start = index - self.head, self.head
        if not self._write(np.zeros(n, dtype=np.float32)):
            return False
        self.last_fill = (start, index)
        self.stats.gaps_filled += int(not self._in_gap)
        self.stats.gap_fill_s += n / SAMPLE_RATE_HZ
        self._in_gap = True
        return True

    def read(self, start: int, end: int) -> np.ndarray:
        """Grid samples [start, end) -> (end - start,) float32 copy."""
        assert self.base <= start <= end <= self.head, (self.base, start, end, self.head)
        return self._buf[start - self.base:end - self.base].copy()

    def overwrite(self, start: int, samples: np.ndarray) -> None:
        """Replace written grid samples [start, start + n) by a cleaned version of them (the
        engine's echo stage, before any window reads them); `heard` keeps what was received."""
        end = start + len(samples)
        assert self.base <= start <= end <= self.head, (self.base, start, end, self.head)
        self._buf[start - self.base:end - self.base] = samples

    def _write(self, samples: np.ndarray) -> bool:
        end = self.head + len(samples)
        if end - self.base > self.capacity:
            self._compact()
            if end - self.base > self.capacity:
                return False
        self._buf[self.head - self.base:end - self.base] = samples
        self.heard.update(samples)
        self.head = end
        return True

    def _compact(self) -> None:
        # Move [keep_from, head) to the buffer's start; older samples are no longer needed.
        start = min(max(self.keep_from, self.base), self.head)
        kept = self.head - start
        self._buf[:kept] = self._buf[start - self.base:self.head - self.base]
        self.base = start


@dataclass
class FaceInputStats:
    faces: int = 0  # accepted partner faces
    late_faces: int = 0  # of those, for a frame already emitted (context for later windows)
    duplicate_faces: int = 0  # dropped: same stamp as the previous face
    out_of_order_faces: int = 0  # dropped: stamped before the previous face
    too_old_faces: int = 0  # dropped: for a frame no longer held in memory
    overflow_faces: int = 0  # dropped: too far ahead of the output
    outlier_faces: int = 0  # dropped: stamped far ahead of the stream, then disowned by it
    held_faces: int = 0  # held now: stamped far ahead, waiting for the stream to confirm it
    held_frames: int = 0  # emitted frames that had no partner face of their own (held/neutral)
    # Incoming names that match no rig channel: at most MAX_UNKNOWN_NAMES (input_tracks).
    unknown_names: tuple[str, ...] = ()
    unknown_names_truncated: bool = False  # more were seen than the list keeps
    missing_channels: tuple[str, ...] = ()  # rig channels the partner face lacks (neutral)

    def outcomes(self) -> int:
        """Faces given to the engine so far: each is counted in exactly one outcome."""
        return (self.faces + self.duplicate_faces + self.out_of_order_faces
                + self.too_old_faces + self.overflow_faces + self.outlier_faces
                + self.held_faces)


class FaceTimeline:
    """Partner faces on the 25 fps frame grid: a face stamped t goes to frame round(t * 25)."""

    def __init__(self, capacity: int, neutral: np.ndarray) -> None:
        self.capacity = int(capacity)
        self.neutral = neutral.astype(np.float32)
        self._values = np.zeros((self.capacity, len(neutral)), dtype=np.float32)  # (cap, C)
        self._have = np.zeros(self.capacity, dtype=bool)
        self.reset()

    def reset(self, start: int = 0, before: np.ndarray | None = None) -> None:
        self.base = start  # frame index of row 0
        self.keep_from = start
        self._have[:] = False
        self._before = self.neutral.copy() if before is None else before  # held into row 0
        self._last_t = -math.inf

    def push(self, values: np.ndarray, t_rel_s: float, emitted: int,
             stats: FaceInputStats) -> None:
        """Store (C,) `values` stamped `t_rel_s` after the anchor; `emitted` frames are out."""
        if abs(t_rel_s - self._last_t) < 1e-6:
            stats.duplicate_faces += 1
            return
        if t_rel_s < self._last_t:
            stats.out_of_order_faces += 1
            return
        j = round(t_rel_s * FRAME_RATE_HZ)
        if j < self.base:
            stats.too_old_faces += 1
            return
        if j - self.base >= self.capacity:
            self._compact()
            if j - self.base >= self.capacity:
                stats.overflow_faces += 1
                return
        stats.late_faces += int(j < emitted)
        self._values[j - self.base], self._have[j - self.base] = values, True
        self._last_t = t_rel_s
        stats.faces += 1

    @property
    def last_t(self) -> float | None:
        """Stamp of the newest face filed (after the anchor), None before any."""
        return None if self._last_t == -math.inf else self._last_t

    def latest(self) -> np.ndarray:
        """(C,) the newest face held (the neutral face before any)."""
        rows = np.flatnonzero(self._have)
        return (self._values[rows[-1]] if len(rows) else self._before).copy()

    def has(self, j: int) -> bool:
        return self.base <= j < self.base + self.capacity and bool(self._have[j - self.base])

    def window(self, start: int, n: int) -> np.ndarray:
        """Frames [start, start + n) -> (n, C), a frame without a face holding the last one."""
        if start + n - self.base > self.capacity:
            self._compact()  # no face arrived to make room (a stream without a face tracker)
        assert start >= self.base and start + n - self.base <= self.capacity
        if n == 1 and self._have[start - self.base]:  # a stream's step: one frame, its face
            return self._values[start - self.base:start - self.base + 1].copy()
        rows = np.arange(start - self.base, start - self.base + n)
        prior = np.flatnonzero(self._have[:rows[0]])
        first = self._values[prior[-1]] if len(prior) else self._before
        src = np.where(self._have[rows], rows, -1)
        src = np.maximum.accumulate(src)  # index of the latest face at or before each row
        out = np.where((src >= 0)[:, None], self._values[np.maximum(src, 0)], first)
        return out.astype(np.float32)

    def _compact(self) -> None:
        shift = min(self.keep_from - self.base, self.capacity)
        if shift <= 0:
            return
        prior = np.flatnonzero(self._have[:shift])
        if len(prior):
            self._before = self._values[prior[-1]].copy()
        self._values[:-shift] = self._values[shift:].copy()
        self._have[:-shift] = self._have[shift:].copy()
        self._have[-shift:] = False
        self.base = self.keep_from
