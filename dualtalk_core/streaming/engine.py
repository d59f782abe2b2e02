"""Streaming engine: timestamped audio chunks and partner faces in, 25 fps face frames out.

Time: the first audio chunk (either speaker) anchors the stream at `t0`; frame k is at
`t0 + k / 25` and covers 16 kHz grid samples [640 k, 640 (k + 1)). With L the effective
lookahead, frame k needs grid samples up to `need(k) = 640 k + 16 L` (exclusive) of BOTH
speakers. A frame is ready when both inputs reach `need(k)`, or when `step(now)` is called with
`now >= t0 + need(k) / 16000 + input_timeout_ms`: then missing audio is silence (counted as a
gap). The partner's face never blocks a frame: a missing face is the last one received (or
the rig's neutral face before any). Frames are emitted once each, in order.

Every run feeds the model the last `window_ms` of input, starting on a frame boundary:
- exact mode (a causal model whose bound `model.lookahead_ms` <= the configured lookahead,
  e.g. lite): L = the model's bound; a run emits the ready frames k..k+m-1 (m >= hop frames) from
  a window ending at `need(k+m-1)`. As frame k depends on nothing past `need(k)`, it equals the
  whole-clip prediction whenever the window reaches back to the clip's start.
- enforced mode (the official non-causal model, or a lookahead below the model's bound): a run
  emits frames k..k+h-1 (h = hop frames) from a window ending exactly at `need(k)`, so frame k+j
  sees `L - 40 j` ms of audio past its start: between `L - hop_ms + 40` and `L`, never more.
  This needs hop_ms <= lookahead_ms.
Seams between runs are cross-faded with the previous run's predictions of the same frames
(`crossfade_ms`), then the One-Euro filter smooths the frame sequence.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from dualtalk_core import rigs
from dualtalk_core.audio import pcm
from dualtalk_core.model.checkpoint import DEFAULT_MODEL_DIR
from dualtalk_core.streaming.timelines import (AudioInputStats, AudioTimeline, FaceInputStats,
                                               FaceTimeline)
from dualtalk_core.streaming.smoothing import OneEuroConfig, OneEuroFilter
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from dualtalk_core.model.network import DualTalkModel

log = logging.getLogger(__name__)


@dataclass
class StreamConfig:
    """Streaming engine settings (the ROS node's `stream.*` parameters map onto these)."""

    # The lite model's training window (200 frames): emitted frames see as much past as the
    # last frames of a training window did.
    window_ms: float = 8000.0
    # A model run every 3 frames: lite with 8 s windows then costs ~0.15 of real time in CPU
    # time on one core (bench/stream_rtf.py), and a frame waits at most 80 ms for its run on
    # top of the lookahead. 40 ms would cost about 3x as much.
    hop_ms: float = 120.0
    # None (or < 0: ROS parameters cannot be null): the model's own bound (lite: 200 ms).
    lookahead_ms: float | None = None
    # Window starts move every run, so consecutive runs disagree a little at the seam (several
    # times the usual frame-to-frame change); blending 2 frames cut that by ~3x in a test.
    crossfade_ms: float = 80.0  # 0: off
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    # How long past a frame's need() to wait for late audio before assuming silence: above the
    # 32-100 ms chunks of microphones and TTS engines, below a visible stall.
    input_timeout_ms: float = 150.0
    # Stamp error absorbed as jitter (a quarter frame); beyond it, silence or a trim re-aligns.
    stamp_tolerance_ms: float = 10.0
    max_buffer_s: float = 30.0  # input held per stream, past what the next window needs
    fps: int = FRAME_RATE_HZ  # the model's frame rate; only 25 is supported
    device: str = "auto"  # model device for `load` ("auto", "cpu", "cuda")

    def __post_init__(self) -> None:
        if isinstance(self.lookahead_ms, (int, float)) and self.lookahead_ms < 0:
            self.lookahead_ms = None
        positive = ("window_ms", "hop_ms", "max_buffer_s")
        non_negative = ("crossfade_ms", "input_timeout_ms", "stamp_tolerance_ms")
        for name in positive + non_negative + ("lookahead_ms",):
            value = getattr(self, name)
            if value is None and name == "lookahead_ms":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0 or (name in positive and value == 0):
                sign = "> 0" if name in positive else ">= 0"
                raise ValueError(f"StreamConfig.{name} must be a number {sign}, got {value!r}")
        if abs(self.hop_ms / 40.0 - round(self.hop_ms / 40.0)) > 1e-6:
            raise ValueError(f"StreamConfig.hop_ms must be a multiple of 40 ms, got {self.hop_ms}")
        if self.stamp_tolerance_ms > 20.0:
            raise ValueError("StreamConfig.stamp_tolerance_ms must be <= 20 (half a frame), got "
                             f"{self.stamp_tolerance_ms}")
        if self.fps != FRAME_RATE_HZ:
            raise ValueError(
                f"StreamConfig.fps must be {FRAME_RATE_HZ} (the model's rate), got {self.fps}")
        if isinstance(self.smoothing, dict):
            self.smoothing = OneEuroConfig(**self.smoothing)
        if not isinstance(self.smoothing, OneEuroConfig):
            raise TypeError("StreamConfig.smoothing must be a OneEuroConfig")


@dataclass(frozen=True)
class Frame:
    """One output frame: `values` (C,) in the model's rig order at time `t` (seconds)."""

    t: float
    values: np.ndarray  # (C,) float32
    head_quaternion: np.ndarray  # (4,) x, y, z, w: Rig.head_quaternion(values)
    index: int  # k: frames since the stream's anchor


@dataclass
class StreamStats:
    self_audio: AudioInputStats = field(default_factory=AudioInputStats)
    partner_audio: AudioInputStats = field(default_factory=AudioInputStats)
    partner_face: FaceInputStats = field(default_factory=FaceInputStats)
    frames_emitted: int = 0
    frames_skipped: int = 0  # jumped over after a stall longer than max_buffer_s
    model_runs: int = 0
    compute_s: float = 0.0  # wall time spent in the model

    def as_dict(self) -> dict[str, Any]:
        """Flat {'self_audio.gaps_filled': 3, ...} for diagnostics."""
        flat: dict[str, Any] = {}
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        return flat


class StreamingEngine:
    """Timestamped inputs -> 25 fps frames of the model's rig (see the module docstring).

    Thread-safe: every public method holds one lock, so a push may wait for one model run.
    """

    def __init__(self, model: DualTalkModel, config: StreamConfig | None = None) -> None:
        config = StreamConfig() if config is None else config
        if not isinstance(config, StreamConfig):
            raise TypeError(f"expected a StreamConfig, got {type(config).__name__}")
        if not callable(getattr(model, "predict", None)) or not hasattr(model, "config"):
            raise TypeError(f"expected a DualTalkModel, got {type(model).__name__}")
        if config.device != "auto":  # "auto" leaves a given model where it is
            from dualtalk_core.model.devices import resolve_device

            model.to(resolve_device(config.device))
        # Inference only; without this, predict() switches every module's mode twice per run.
        model.eval()
        self.model, self.config = model, config
        self.rig = rigs.get_rig(model.config.rig)
        self.exact, self.lookahead_ms = _effective_lookahead(model.lookahead_ms,
                                                             config.lookahead_ms)
        self._need_offset = round(self.lookahead_ms * SAMPLE_RATE_HZ / 1000)
        self._window = round(config.window_ms * SAMPLE_RATE_HZ / 1000)
        self._hop_frames = round(config.hop_ms / 40.0)
        self._crossfade_frames = round(config.crossfade_ms / 40.0)
        self._check_sizes()
        # Frames of log-mel context (lite); None: the model has no log-mel front end to cache.
        self._mel_lead: int | None = getattr(model, "log_mel_context_frames", None)
        # Backlog past the next frame's need(), plus what any window reaches back over.
        self._backlog_limit = round(config.max_buffer_s * SAMPLE_RATE_HZ)
        capacity = self._backlog_limit + self._window + self._need_offset + SAMPLE_RATE_HZ
        tolerance_s = config.stamp_tolerance_ms / 1000.0
        self._tracks = (AudioTimeline(capacity, tolerance_s), AudioTimeline(capacity, tolerance_s))
        self._faces = FaceTimeline(capacity // SAMPLES_PER_FRAME + 1, self.rig.neutral_array())
        self._smoother = OneEuroFilter(config.smoothing)
        self._lock = threading.RLock()
        self.reset()

    @classmethod
    def load(cls, model_path: str | Path | None = None,
             config: StreamConfig | None = None) -> StreamingEngine:
        """Engine around the model at `model_path` (None: the shipped default model).

        `model_path` may also be a preset name, 'lite' or 'official' (random weights: only for
        tests and timing).
        """
        from dualtalk_core.model.network import PRESETS, DualTalkModel

        config = StreamConfig() if config is None else config
        path = DEFAULT_MODEL_DIR if model_path is None else Path(model_path)
        if model_path is not None and str(model_path) in PRESETS and not path.exists():
            log.warning("preset %r with random weights: for tests and timing only", model_path)
            return cls(DualTalkModel.from_preset(str(model_path), device=config.device), config)
        if not path.exists():
            raise FileNotFoundError(
                f"no model at {path}: pass model_path=<folder with model.safetensors and "
                "config.json, or a DualTalk.pth>, a preset name ('lite', 'official'), or build "
                "StreamingEngine(DualTalkModel.load(...)); the default model is "
                f"{DEFAULT_MODEL_DIR}")
        return cls(DualTalkModel.load(path, device=config.device), config)

    def _check_sizes(self) -> None:
        hop = self._hop_frames * SAMPLES_PER_FRAME
        if not self.exact and hop > self._need_offset:
            raise ValueError(
                f"hop_ms={self.config.hop_ms} exceeds lookahead_ms={self.lookahead_ms}: the "
                "engine enforces the lookahead from one window per hop, so use hop_ms <= "
                "lookahead_ms")
        if self._window < self._need_offset + hop:
            raise ValueError(
                f"window_ms={self.config.window_ms} must be >= lookahead_ms + hop_ms = "
                f"{self.lookahead_ms + self.config.hop_ms}")

    # ------------------------------------------------------------------ input
    def reset(self) -> None:
        """Forget the stream (inputs, outputs, filter state and stats); the next chunk anchors."""
        with self._lock:
            self._t0: float | None = None
            self._pending_face: np.ndarray | None = None  # a face pushed before any audio
            self._next = 0  # next frame index to emit
            self._tail: tuple[int, np.ndarray] | None = None  # (first frame, (n, C)) last run
            self._mel: tuple[int, int, np.ndarray] | None = None  # see _log_mel
            for track in self._tracks:
                track.reset()
            self._faces.reset()
            self._smoother.reset()
            self._stats = StreamStats()
            self._tracks[0].stats = self._stats.self_audio
            self._tracks[1].stats = self._stats.partner_audio

    @property
    def stats(self) -> StreamStats:
        """A snapshot of the counters."""
        with self._lock:
            return copy.deepcopy(self._stats)

    @property
    def t0(self) -> float | None:
        """The stream's anchor time (first audio sample), None before any audio."""
        return self._t0

    def start(self, t0: float) -> None:
        """Anchor the frame grid at `t0` before any audio arrives (no-op once anchored).

        A face must not wait for a first chunk that may never come: once anchored, `step(now)`
        emits frames with silence and the held partner face as their input is overdue.
        """
        with self._lock:
            self._anchor(_check_time(t0, "t0"))

    def _anchor(self, t: float) -> None:
        if self._t0 is None:
            self._t0 = t
            self._faces.reset(0, self._pending_face)

    def push_self_audio(self, samples: np.ndarray, sample_rate: float,
                        t_first_sample: float) -> None:
        """Own (robot) audio: (N,) or (N, channels) int16/float samples, first sample's time."""
        self._push_audio(0, samples, sample_rate, t_first_sample)

    def push_partner_audio(self, samples: np.ndarray, sample_rate: float,
                           t_first_sample: float) -> None:
        """The partner's audio: as push_self_audio."""
        self._push_audio(1, samples, sample_rate, t_first_sample)

    def _push_audio(self, which: int, samples: np.ndarray, sample_rate: float,
                    t_first_sample: float) -> None:
        mono = pcm.to_mono_float32(samples)
        rate = pcm.check_rate(sample_rate)
        t = _check_time(t_first_sample, "t_first_sample")
        with self._lock:
            self._anchor(t)
            self._tracks[which].push(mono, rate, t - self._t0)

    def push_partner_face(self, values: np.ndarray, names: Sequence[str], t: float) -> None:
        """One partner face: (len(names),) values named `names` (any supported spelling)."""
        t = _check_time(t, "t")
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError("names must be a sequence of channel-name strings")
        row, cmap = rigs.to_rig_order(self.rig.name, list(names), values)
        if row.ndim != 1 or not np.isfinite(row).all():
            raise ValueError("expected one face (len(names),) of finite values")
        with self._lock:
            self._note_names(cmap)
            if self._t0 is None:  # before any audio: the best guess of the face to hold
                self._pending_face = row
                self._stats.partner_face.faces += 1
                return
            self._faces.push(row, t - self._t0, self._next, self._stats.partner_face)

    def _note_names(self, cmap: rigs.ChannelMap) -> None:
        stats = self._stats.partner_face
        unknown = tuple(sorted(set(stats.unknown_names) | set(cmap.unknown)))
        if unknown != stats.unknown_names or cmap.missing != stats.missing_channels:
            log.warning("partner face: %d name(s) unknown to rig %s %s; %d channel(s) missing "
                        "(neutral)", len(cmap.unknown), self.rig.name, list(cmap.unknown[:5]),
                        len(cmap.missing))
        stats.unknown_names, stats.missing_channels = unknown, cmap.missing

    # ------------------------------------------------------------------ output
    def step(self, now: float | None = None) -> list[Frame]:
        """Run the model where a hop of frames is ready; return the new frames, in order.

        `now` (same clock as the stamps) lets frames whose input is overdue by
        input_timeout_ms go out with silence for the missing audio; None waits for input.
        """
        with self._lock:
            if self._t0 is None:
                return []
            if now is not None:
                self._force(_check_time(now, "now") - self._t0)
            return self._drain(final=False)

    def flush(self) -> list[Frame]:
        """End of stream: emit every frame up to the end of the input, as offline processing
        of the clip would (the shorter input is padded with silence)."""
        with self._lock:
            if self._t0 is None:
                return []
            for track in self._tracks:
                track.end_segment()
            end = max(track.head for track in self._tracks)
            for track in self._tracks:
                track.fill_to(end)
            return self._drain(final=True)

    def _force(self, now_rel_s: float) -> None:
        """Fill audio overdue at `now_rel_s` with silence; jump if the stall outgrew the buffer."""
        due = math.floor((now_rel_s - self.config.input_timeout_ms / 1000) * SAMPLE_RATE_HZ)
        if due - self._need(self._next) > self._backlog_limit:
            # Resume one hop behind `now`, so that this step emits frames again.
            self._skip_to((due - self._need_offset) // SAMPLES_PER_FRAME - self._hop_frames + 1)
        for track in self._tracks:
            if track.head < due:
                track.end_segment()
                track.fill_to(due)

    def _skip_to(self, frame: int) -> None:
        skipped = frame - self._next
        log.warning("stream stalled: skipping %d frames (%.1f s) to catch up", skipped,
                    skipped / FRAME_RATE_HZ)
        start = self._keep_from(frame)
        for track in self._tracks:
            track.reset(start)  # keeps its stats
        self._faces.reset(start // SAMPLES_PER_FRAME, self._faces.latest())
        self._next, self._tail, self._mel = frame, None, None
        self._smoother.reset()
        self._stats.frames_skipped += skipped

    def _keep_from(self, frame: int | None = None) -> int:
        """First grid sample any later window can start at (whole frames)."""
        frame = self._next if frame is None else frame
        return max(0, (frame * SAMPLES_PER_FRAME - self._window) // SAMPLES_PER_FRAME) \
            * SAMPLES_PER_FRAME

    def _need(self, k: int) -> int:
        return k * SAMPLES_PER_FRAME + self._need_offset

    def _drain(self, final: bool) -> list[Frame]:
        frames: list[Frame] = []
        while (batch := self._next_batch(final)) is not None:
            frames.extend(self._run(*batch))
        keep = self._keep_from()
        for track in self._tracks:
            track.keep_from = keep
        self._faces.keep_from = keep // SAMPLES_PER_FRAME
        return frames

    def _next_batch(self, final: bool) -> tuple[int, int, int] | None:
        """(first frame k, frame count m, window end e) of the next run, or None."""
        avail = min(track.head for track in self._tracks)
        k, hop = self._next, self._hop_frames
        n_exist = -(-avail // SAMPLES_PER_FRAME)  # frames with at least one sample
        if self.exact:
            n_ready = n_exist if final else (avail - self._need_offset) // SAMPLES_PER_FRAME + 1
            most = (self._window - self._need_offset) // SAMPLES_PER_FRAME + 1
            m = min(n_ready - k, most)
            if m <= 0 or (m < hop and not final):
                return None
            return k, m, min(self._need(k + m - 1), avail)
        if self._need(k) <= avail:
            return k, hop, self._need(k)
        if final and n_exist > k:
            return k, n_exist - k, avail
        return None

    def _run(self, k: int, m: int, end: int) -> list[Frame]:
        f0 = max(0, -(-(end - self._window) // SAMPLES_PER_FRAME))  # window start frame
        start = f0 * SAMPLES_PER_FRAME
        own, other = (track.read(start, end) for track in self._tracks)  # (N,) each
        motion = self._faces.window(f0, -(-(end - start) // SAMPLES_PER_FRAME))  # (T, C)
        started = time.perf_counter()
        mel = self._log_mel(f0, end)  # (2, T, dim) or None
        extra = {} if mel is None else {"log_mel": mel}
        pred = self.model.predict(own, other, motion, **extra)  # (T, C)
        self._stats.compute_s += time.perf_counter() - started
        self._stats.model_runs += 1
        out = self._crossfade(k, pred[k - f0:k - f0 + m])  # (m, C)
        self._tail = (k + m, pred[k - f0 + m:])
        self._next = k + m
        return self._frames(k, out)

    def _log_mel(self, f0: int, end: int) -> np.ndarray | None:
        """(2, T, dim) log-mel features of both voices for the window [640 f0, end), or None.

        Why: consecutive windows share all but a hop of audio, and a frame's features depend
        only on its own samples and `lead` frames before it, which never change once written;
        recomputing them all cost ~2 ms of an ~11 ms lite run on an 8 s window (profiled).
        Reused: the last window's frames whose samples were all there, except a window's first
        `lead` frames, which see zeros before the window (as the model does offline).
        """
        lead = self._mel_lead
        n = -(-(end - f0 * SAMPLES_PER_FRAME) // SAMPLES_PER_FRAME)
        if lead is None or n <= lead:
            return None
        parts = [self._mel_of(f0, (f0 + lead) * SAMPLES_PER_FRAME, 0)]  # (2, lead, dim)
        reuse_end = f0 + lead  # frames [f0 + lead, reuse_end) come from the last window
        if self._mel is not None and self._mel[0] <= f0:
            prev_f0, complete, prev = self._mel
            reuse_end = max(reuse_end, min(complete, f0 + n))
            parts.append(prev[:, f0 + lead - prev_f0:reuse_end - prev_f0])
        if reuse_end < f0 + n:
            parts.append(self._mel_of(reuse_end - lead, end, lead))
        mel = np.concatenate(parts, axis=1)
        self._mel = (f0, f0 + (end - f0 * SAMPLES_PER_FRAME) // SAMPLES_PER_FRAME, mel)
        return mel

    def _mel_of(self, first: int, stop: int, drop: int) -> np.ndarray:
        """(2, T - drop, dim) features of frames first + drop... from samples [640 first, stop)."""
        start = first * SAMPLES_PER_FRAME
        audio = np.stack([track.read(start, stop) for track in self._tracks])  # (2, N)
        n = -(-(stop - start) // SAMPLES_PER_FRAME)
        return self.model.log_mel_frames(audio, n)[:, drop:]

    def _crossfade(self, k: int, out: np.ndarray) -> np.ndarray:
        """Blend the previous run's predictions into the first frames after the seam."""
        if not self._crossfade_frames or self._tail is None or self._tail[0] != k:
            return out
        n = min(self._crossfade_frames, len(self._tail[1]), len(out))
        w = (np.arange(1, n + 1) / (self._crossfade_frames + 1))[:, None]  # (n, 1) new weight
        out = out.copy()
        out[:n] = (1 - w) * self._tail[1][:n] + w * out[:n]
        return out

    def _frames(self, k: int, values: np.ndarray) -> list[Frame]:
        assert self._t0 is not None
        frames = []
        for j, row in enumerate(values):
            t = self._t0 + (k + j) / FRAME_RATE_HZ
            row = self._smoother(row, t)
            quat = self.rig.head_quaternion(row).astype(np.float32)
            frames.append(Frame(t, row, quat, k + j))
            self._stats.partner_face.held_frames += int(not self._faces.has(k + j))
        self._stats.frames_emitted += len(frames)
        return frames


def _effective_lookahead(model_ms: float | None, config_ms: float | None) -> tuple[bool, float]:
    """(exact mode?, lookahead in ms) from the model's bound and the configured one."""
    if config_ms is None:
        if model_ms is None:
            raise ValueError(
                "the model has no lookahead bound (the non-causal official network): set "
                "StreamConfig.lookahead_ms (e.g. 400) and the engine enforces it")
        return True, float(model_ms)
    if model_ms is not None and config_ms >= model_ms:
        return True, float(model_ms)
    if config_ms < 40.0:
        raise ValueError(f"lookahead_ms={config_ms} is under one 40 ms frame; a frame needs "
                         "its own audio")
    return False, float(config_ms)


def _check_time(t: float, name: str) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)) \
            or not math.isfinite(t):
        raise ValueError(f"{name} must be a finite time in seconds, got {t!r}")
    return float(t)


def process_clip(engine_or_model: StreamingEngine | DualTalkModel, self_audio: np.ndarray,
                 partner_audio: np.ndarray, partner_motion: np.ndarray | None = None,
                 sample_rate: float = SAMPLE_RATE_HZ, config: StreamConfig | None = None,
                 chunk_ms: float | None = None) -> np.ndarray:
    """Whole clips through the streaming code: (N,), (N,), (T, C) -> (T, C) float32 frames.

    Audio at `sample_rate` is pushed in `chunk_ms` chunks (default: the hop), the partner's
    motion (rig order, T = ceil(N16 / 640) frames, None = neutral) one face per frame, stepping
    after each chunk; then `flush()`. The engine is reset first and its stats show afterwards.
    """
    if isinstance(engine_or_model, StreamingEngine):
        if config is not None:
            raise ValueError("pass config only with a model; the engine has its own")
        engine = engine_or_model
    else:
        engine = StreamingEngine(engine_or_model, config)
    own, other = (pcm.to_mono_float32(a) for a in (self_audio, partner_audio))
    if own.ndim != 1 or own.shape != other.shape:
        raise ValueError(f"self_audio and partner_audio must be (N,) of one length, got "
                         f"{np.shape(self_audio)} and {np.shape(partner_audio)}")
    rate = pcm.check_rate(sample_rate)
    n_frames = -(-(-(-len(own) * SAMPLE_RATE_HZ // rate)) // SAMPLES_PER_FRAME)
    motion = _clip_motion(partner_motion, n_frames, engine.rig)
    faces = np.zeros((0, engine.rig.dim)) if motion is None else motion  # (T or 0, C)
    chunk = max(1, round((chunk_ms or engine.config.hop_ms) * rate / 1000))
    engine.reset()
    frames: list[Frame] = []
    pushed = 0  # partner faces pushed so far
    for i in range(0, len(own), chunk):
        t = i / rate
        engine.push_self_audio(own[i:i + chunk], rate, t)
        engine.push_partner_audio(other[i:i + chunk], rate, t)
        upto = min(len(faces), math.ceil((i + chunk) / rate * FRAME_RATE_HZ))
        for j in range(pushed, upto):
            engine.push_partner_face(faces[j], engine.rig.names, j / FRAME_RATE_HZ)
        pushed = max(pushed, upto)
        frames.extend(engine.step())
    frames.extend(engine.flush())
    assert [f.index for f in frames] == list(range(n_frames)), (len(frames), n_frames)
    return np.stack([f.values for f in frames]).astype(np.float32)


def _clip_motion(motion: np.ndarray | None, n_frames: int, rig: rigs.Rig) -> np.ndarray | None:
    if motion is None:
        return None
    motion = np.asarray(motion, dtype=np.float32)
    if motion.shape != (n_frames, rig.dim):
        raise ValueError(f"partner_motion: expected (T, C) = ({n_frames}, {rig.dim}) (T = "
                         f"ceil(N16 / 640), rig {rig.name}), got {motion.shape}")
    return motion
