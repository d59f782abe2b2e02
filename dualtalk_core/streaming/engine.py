"""Streaming engine: timestamped audio chunks and partner faces in, 25 fps face frames out.

Time: the first audio chunk (either speaker) anchors the stream at `t0`; frame k is at
`t0 + k / 25` and covers 16 kHz grid samples [640 k, 640 (k + 1)). Frame k needs grid samples
up to `need(k)` of BOTH speakers (its lookahead past its start; see `frame_scheduler`). A frame
is ready when both inputs reach `need(k)`, or when `step(now)` is called with
`now >= t0 + need(k) / 16000 + input_timeout_ms` (or a caller's shorter `set_wait_cap`): then
missing audio is silence (counted as a gap). The partner's face never blocks a frame: a missing
face is the last one received (or the rig's neutral face before any). Frames are emitted once
each, in order.

The engine is a thread-safe facade over parts with one job each: `InputTracks` (the inputs on
one grid), `EchoStage` (the own voice out of the partner's, optional), `FrameScheduler` (which
frames the next run emits), `WindowedStepper` (the model over a window, seams cross-faded),
`IdleStage` (sampled blinks and head sway), `OutputStage` (One-Euro smoothing, head pose,
`Frame`s).
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from dualtalk_core import config_fields, rigs
from dualtalk_core.audio import pcm
from dualtalk_core.model import DEFAULT_MODEL_DIR
from dualtalk_core.streaming.echo_stage import EchoStage
from dualtalk_core.streaming.frame_scheduler import FrameScheduler
from dualtalk_core.streaming.idle_stage import IdleStage
from dualtalk_core.streaming.input_tracks import InputTracks
from dualtalk_core.streaming.incremental_stepper import IncrementalStepper, supports_incremental
from dualtalk_core.streaming.model_stepper import WindowedStepper
from dualtalk_core.streaming.output_stage import Frame, OutputStage
from dualtalk_core.streaming.stream_config import StreamConfig
from dualtalk_core.streaming.timelines import AudioInputStats, FaceInputStats
from dualtalk_core.units import FRAME_MS, SAMPLE_RATE_HZ

if TYPE_CHECKING:
    from dualtalk_core.model import DualTalkModel

log = logging.getLogger(__name__)

__all__ = ["StreamStats", "StreamingEngine"]


@dataclass
class StreamStats:
    """A snapshot of the engine's counters since the last `reset()`."""

    self_audio: AudioInputStats = field(default_factory=AudioInputStats)
    partner_audio: AudioInputStats = field(default_factory=AudioInputStats)
    partner_face: FaceInputStats = field(default_factory=FaceInputStats)
    frames_emitted: int = 0
    frames_skipped: int = 0  # jumped over after a stall longer than max_buffer_s
    model_runs: int = 0
    nan_guarded: int = 0  # frames whose model output was not finite (held frame instead)
    clipped_values: int = 0  # output values brought back into the rig's range
    idle_blinks: int = 0  # blinks the idle motion started
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

    Thread-safe: every public method but the `t0` read holds one lock, so a push may wait for
    one model run.
    """

    def __init__(self, model: DualTalkModel, config: StreamConfig | None = None) -> None:
        """Stream through `model` where it is (its device is the caller's choice)."""
        config = StreamConfig() if config is None else config
        if not isinstance(config, StreamConfig):
            raise TypeError(f"expected a StreamConfig, got {type(config).__name__}")
        if not callable(getattr(model, "predict", None)) or not hasattr(model, "config"):
            raise TypeError(f"expected a DualTalkModel, got {type(model).__name__}")
        # Inference only; without this, predict() switches every module's mode twice per run.
        model.eval()
        self.model, self.config = model, config
        # What the parts were built from: `reconfigure` compares against this copy, so a
        # caller's later in-place edit of `config` cannot hide a read-only change.
        self._built_from = copy.deepcopy(config)
        self.rig = rigs.get_rig(model.config.rig)
        self._schedule = FrameScheduler(model.lookahead_ms, config)
        self._tracks = InputTracks(self.rig, self._schedule.buffer_samples,
                                   config.stamp_tolerance_ms)
        self._stepper = _make_stepper(model, config, self._schedule)
        if isinstance(self._stepper, IncrementalStepper):  # frames go out one by one
            self._schedule.min_batch_frames = 1
        self._output = OutputStage(self.rig, config.smoothing)
        self._idle = IdleStage(model, config)
        self._echo = EchoStage(config.echo_cancellation)  # own voice out of the partner's
        self._lock = threading.Lock()
        self.reset()

    @classmethod
    def load(cls, model_path: str | Path | None = None, config: StreamConfig | None = None,
             device: str = "auto") -> StreamingEngine:
        """Engine around the model at `model_path` (None: the shipped default model), loaded
        onto `device` ("auto": CUDA when available, "cpu" or "cuda").

        `model_path` may also be a preset name, 'lite' or 'official' (random weights: only for
        tests and timing).
        """
        from dualtalk_core.model import PRESETS, DualTalkModel

        path = DEFAULT_MODEL_DIR if model_path is None else Path(model_path)
        if model_path is not None and str(model_path) in PRESETS and not path.exists():
            log.warning("preset %r with random weights: for tests and timing only", model_path)
            return cls(DualTalkModel.from_preset(str(model_path), device=device), config)
        if not path.exists():
            raise FileNotFoundError(
                f"no model at {path}: pass model_path=<folder with model.safetensors and "
                "config.json, or a DualTalk.pth>, a preset name ('lite', 'official'), or build "
                "StreamingEngine(DualTalkModel.load(...)); the default model is "
                f"{DEFAULT_MODEL_DIR}")
        return cls(DualTalkModel.load(path, device=device), config)

    # ------------------------------------------------------------------ state and settings
    @property
    def exact(self) -> bool:
        """Exact mode: frames equal whole-clip prediction (see `frame_scheduler`)."""
        return self._schedule.exact

    @property
    def incremental(self) -> bool:
        """Whether frames are computed one at a time (`IncrementalStepper`)."""
        return isinstance(self._stepper, IncrementalStepper)

    @property
    def batch_frames(self) -> int:
        """Fewest frames a run emits (a frame may wait for the rest of its batch)."""
        return self._schedule.min_batch_frames

    @property
    def lookahead_ms(self) -> float:
        """The lookahead in force: the model's bound, or the enforced configured one."""
        return self._schedule.lookahead_ms

    @property
    def input_wait_ms(self) -> float:
        """How long past its lookahead a frame may wait for input (echo cancellation's)."""
        return self._echo.max_wait_ms

    @property
    def t0(self) -> float | None:
        """The stream's anchor time (first audio sample), None before any audio."""
        return self._tracks.t0  # one attribute read: never waits for a model run

    def next_batch_due_s(self) -> float | None:
        """When the last sample the next batch of frames needs is due (the stamps' clock), None
        before any audio. A step before then cannot emit; one at it can when the inputs are
        there or absent, so a caller that waits for it never holds a frame for a timer tick."""
        with self._lock:
            t0 = self._tracks.t0
            if t0 is None:
                return None
            last = self._schedule.next + self._schedule.min_batch_frames - 1
            # half a sample on: float rounding of (due - t0) cannot land a sample short
            need = self._echo.input_needed(self._schedule.need(last))
            return t0 + (need + 0.5) / SAMPLE_RATE_HZ

    @property
    def stats(self) -> StreamStats:
        """A snapshot of the counters."""
        with self._lock:
            tracks, output = self._tracks, self._output
            face = dataclasses.replace(tracks.face_stats, held_frames=output.held_frames)
            return StreamStats(
                self_audio=copy.deepcopy(tracks.self_audio.stats),
                partner_audio=copy.deepcopy(tracks.partner_audio.stats),
                partner_face=face, frames_emitted=output.frames_emitted,
                frames_skipped=self._schedule.frames_skipped, model_runs=self._model_runs,
                nan_guarded=self._nan_guarded, clipped_values=output.clipped_values,
                idle_blinks=self._idle.blinks, compute_s=self._compute_s)

    def reset(self) -> None:
        """Forget the stream (inputs, outputs, filter state and stats); the next chunk anchors."""
        with self._lock:
            self._tracks.reset()
            self._echo.restart(0)
            self._schedule.reset()
            self._stepper.reset()
            self._output.reset()
            self._idle.reset()
            self._model_runs = 0
            self._nan_guarded = 0  # frames whose model output was not finite
            self._compute_s = 0.0  # wall time in the stepper

    def reconfigure(self, config: StreamConfig) -> None:
        """Apply `config`, whose read-only fields must equal the current ones: smoothing takes
        effect from the next frame, input_timeout_ms at the next step. The read-only fields
        size the buffers and fix the schedule: changing them needs a new engine."""
        if not isinstance(config, StreamConfig):
            raise TypeError(f"expected a StreamConfig, got {type(config).__name__}")
        with self._lock:
            changed = config_fields.first_read_only_change(self._built_from, config)
            if changed is not None:
                raise ValueError(
                    f"StreamConfig.{changed} is read-only on a running engine (got "
                    f"{config_fields.field_value(config, changed)!r}, running "
                    f"{config_fields.field_value(self._built_from, changed)!r}); build a new "
                    "StreamingEngine")
            self.config = config
            self._schedule.input_timeout_ms = config.input_timeout_ms
            self._schedule.absent_after_ms = config.absent_after_ms
            self._output.set_smoothing(config.smoothing)

    def set_wait_cap(self, ms: float | None) -> None:
        """Wait at most `ms` (None: no cap) past a frame's need for missing audio, when less
        than input_timeout_ms: a live caller that publishes each frame at a deadline takes audio
        still missing then as silence, so a stalled input costs silence rather than a late
        face. The caller sizes its deadline from `arrival_lateness_ms`."""
        if ms is not None and not (math.isfinite(ms) and ms >= 0):
            raise ValueError(f"wait cap must be a finite ms >= 0 or None, got {ms!r}")
        with self._lock:
            self._schedule.wait_cap_ms = ms

    @property
    def wait_ms(self) -> float:
        """How long past its need a frame now waits for missing audio (ms)."""
        return self._schedule.wait_ms

    def arrival_lateness_ms(self, percentile: float = 99.0) -> float | None:
        """The `percentile` of how late the audio inputs' chunks arrived after their first
        sample (ms) over their last LATENESS_CHUNKS chunks each (only chunks continuing received
        audio, with `received_s` given); None before any."""
        with self._lock:
            lateness = self._tracks.arrival_lateness_s()
        if not lateness:
            return None
        return float(np.percentile(lateness, percentile)) * 1000.0

    def warm_up(self, seconds: float = 1.0) -> None:
        """Run the model over `seconds` of silence, then forget it: the first runs of a process
        allocate and pick kernels (several times a hop), and a live stream must not pay for
        that with skipped hops. Counters are reset too."""
        silence = np.zeros(round(seconds * SAMPLE_RATE_HZ), dtype=np.float32)
        self.push_self_audio(silence, SAMPLE_RATE_HZ, 1.0)
        self.push_partner_audio(silence, SAMPLE_RATE_HZ, 1.0)
        self.flush()
        self.reset()

    # ------------------------------------------------------------------ input
    def start(self, t0: float) -> None:
        """Anchor the frame grid at `t0` before any audio arrives (no-op once anchored).

        A face must not wait for a first chunk that may never come: once anchored, `step(now)`
        emits frames with silence and the held partner face as their input is overdue.
        """
        with self._lock:
            self._tracks.anchor(_check_time(t0, "t0"))

    def push_self_audio(self, samples: np.ndarray, sample_rate: float,
                        t_first_sample: float, received_s: float | None = None) -> None:
        """Own (robot) audio: (N,) or (N, channels) int16/float samples, first sample's time.
        `received_s`, the time it arrived (live use), tells audio published ahead of its
        stamps from audio that frames waited for (`Frame.waited`)."""
        self._push_audio(0, samples, sample_rate, t_first_sample, received_s)

    def push_partner_audio(self, samples: np.ndarray, sample_rate: float,
                           t_first_sample: float, received_s: float | None = None) -> None:
        """The partner's audio: as push_self_audio."""
        self._push_audio(1, samples, sample_rate, t_first_sample, received_s)

    def _push_audio(self, which: int, samples: np.ndarray, sample_rate: float,
                    t_first_sample: float, received_s: float | None) -> None:
        mono, peak = pcm.checked_mono(samples)  # (N,), finite, |x| <= MAX_FLOAT_PEAK
        rate = pcm.check_rate(sample_rate)
        t = _check_time(t_first_sample, "t_first_sample")
        if received_s is not None:
            received_s = _check_time(received_s, "received_s")
        if hot := peak > 1.0:  # a hot float signal: the model never saw beyond full scale
            mono = np.clip(mono, -1.0, 1.0)
        with self._lock:
            self._tracks.audio[which].stats.clipped_chunks += int(hot)
            self._tracks.push_audio(which, mono, rate, t, received_s)

    def push_partner_face(self, values: np.ndarray, names: Sequence[str], t: float) -> None:
        """One partner face: (len(names),) values named `names` (any supported spelling)."""
        t = _check_time(t, "t")
        if isinstance(names, str) or not all(map(isinstance, names, itertools.repeat(str))):
            raise TypeError("names must be a sequence of channel-name strings")
        if len(names) > rigs.MAX_CHANNELS:
            raise ValueError(f"a face of {len(names)} channels; at most {rigs.MAX_CHANNELS}")
        values = np.asarray(values, dtype=np.float32)
        if not np.isfinite(values).all() or np.abs(values).max(initial=0) > rigs.MAX_ABS_VALUE:
            raise ValueError(f"face values must be finite and within +-{rigs.MAX_ABS_VALUE:g}")
        row, cmap = rigs.to_rig_order(self.rig.name, list(names), values)  # (C,)
        if row.ndim != 1:
            raise ValueError("expected one face (len(names),) of finite values")
        with self._lock:
            self._tracks.push_face(row, cmap, t, self._schedule.next)

    # ------------------------------------------------------------------ output
    def step(self, now: float | None = None) -> list[Frame]:
        """Run the model where a hop of frames is ready; return the new frames, in order.

        `now` (same clock as the stamps) lets frames whose input is overdue by
        input_timeout_ms go out with silence for the missing audio; None waits for input.
        """
        with self._lock:
            t0 = self._tracks.t0
            if t0 is None:
                return []
            if now is not None:
                now_rel = _check_time(now, "now") - t0
                self._tracks.release_due(now_rel, self._schedule.next)
                self._force(now_rel)
            return self._drain(final=False)

    def flush(self) -> list[Frame]:
        """End of stream: emit every frame up to the end of the input, as offline processing
        of the clip would (the shorter input is padded with silence)."""
        with self._lock:
            if self._tracks.t0 is None:
                return []
            self._tracks.end(self._schedule.next)
            return self._drain(final=True)

    def _force(self, now_rel_s: float) -> None:
        """Fill audio overdue at `now_rel_s` with silence; jump if the stall outgrew the buffer."""
        due = self._schedule.due(now_rel_s)
        resume = self._schedule.stall_resume_frame(due)
        if resume is not None:
            start = self._schedule.keep_from(resume)
            self._schedule.skip_to(resume)
            self._tracks.restart_at(start)
            self._echo.restart(start)
            self._stepper.reset()  # the next run does not continue the last one
            self._output.restart()
        self._tracks.fill_overdue(due)
        self._tracks.fill_absent(self._schedule.absent_before(now_rel_s),
                                 math.floor(now_rel_s * SAMPLE_RATE_HZ))

    def _drain(self, final: bool) -> list[Frame]:
        frames: list[Frame] = []
        available = self._echo.advance(self._tracks, final)  # partner samples cleaned
        while (batch := self._schedule.next_batch(available, final)) is not None:
            frames.extend(self._run(*batch))
        self._tracks.keep_from(self._schedule.keep_from())
        return frames

    def _run(self, k: int, m: int, end: int) -> list[Frame]:
        t0 = self._tracks.t0
        assert t0 is not None
        started = time.perf_counter()
        values = self._stepper.run(k, m, end, self._tracks)  # (m, C)
        self._compute_s += time.perf_counter() - started
        self._model_runs += 1
        self._schedule.advance_to(k + m)
        bad = ~np.isfinite(values).all(axis=1)  # (m,)
        if bad.any():  # guard the smoother and the output; start the model over
            values = self._output.guard(values, bad)
            self._stepper.reset()
            self._nan_guarded += int(bad.sum())
            log.warning("model output not finite for %d frame(s): held the last good frame "
                        "and restarted the model's state", int(bad.sum()))
        values = self._idle.apply(k, values, self._tracks)
        return self._output.frames(k, values, t0, self._tracks.has_face,
                                   lambda j: self._tracks.waited(self._schedule.need(j)))


def _make_stepper(model: DualTalkModel, config: StreamConfig,
                  schedule: FrameScheduler) -> WindowedStepper | IncrementalStepper:
    """The incremental stepper where the model allows it (exact mode, a causal log-mel model
    with a bounded span) and the config does not ask otherwise; else the windowed one."""
    able = schedule.exact and supports_incremental(model)
    if config.stepper == "incremental" and not able:
        raise ValueError("StreamConfig.stepper='incremental' needs a causal log-mel model with "
                         "attention_span_frames set, at its own lookahead (lookahead_ms < 0 or "
                         ">= the model's); use 'windowed' or 'auto'")
    if able and config.stepper != "windowed":
        return IncrementalStepper(model)
    return WindowedStepper(model, schedule.window, round(config.crossfade_ms / FRAME_MS))


def _check_time(t: float, name: str) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)) \
            or not math.isfinite(t):
        raise ValueError(f"{name} must be a finite time in seconds, got {t!r}")
    return float(t)
