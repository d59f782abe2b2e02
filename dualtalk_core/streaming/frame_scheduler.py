"""Which frames the next model run emits, from which window, and what is overdue at `now`.

Frame k covers 16 kHz grid samples [640 k, 640 (k + 1)). With L the effective lookahead, frame
k needs grid samples up to `need(k) = 640 k + 16 L` (exclusive) of BOTH speakers. Every run
feeds the model the last `window_ms` of input, starting on a frame boundary:
- exact mode (a causal model whose bound `model.lookahead_ms` <= the configured lookahead,
  e.g. lite): L = the model's bound; a run emits the ready frames k..k+m-1 (m >= hop frames) from
  a window ending at `need(k+m-1)`. As frame k depends on nothing past `need(k)`, it equals the
  whole-clip prediction whenever the window reaches back to the clip's start.
- enforced mode (the official non-causal model, or a lookahead below the model's bound): a run
  emits frames k..k+h-1 (h = hop frames) from a window ending exactly at `need(k)`, so frame k+j
  sees `L - 40 j` ms of audio past its start: between `L - hop_ms + 40` and `L`, never more.
  This needs hop_ms <= lookahead_ms.
The schedule only does index arithmetic: it never touches audio, so it is tested on its own.
"""
from __future__ import annotations

import logging
import math

from dualtalk_core.streaming.stream_config import StreamConfig
from dualtalk_core.units import FRAME_MS, FRAME_RATE_HZ, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME

log = logging.getLogger(__name__)

Batch = tuple[int, int, int]  # (first frame k, frame count m, window end sample e)


def effective_lookahead(model_ms: float | None, config_ms: float) -> tuple[bool, float]:
    """(exact mode?, lookahead in ms) from the model's bound (None: unbounded) and the
    configured one. The only place where a configured lookahead < 0 means the model's bound."""
    if config_ms < 0:
        if model_ms is None:
            raise ValueError(
                "the model has no lookahead bound (the non-causal official network): set "
                "StreamConfig.lookahead_ms (e.g. 400) and the engine enforces it")
        return True, float(model_ms)
    if model_ms is not None and config_ms >= model_ms:
        return True, float(model_ms)
    if config_ms < FRAME_MS:
        raise ValueError(f"lookahead_ms={config_ms} is under one 40 ms frame; a frame needs "
                         "its own audio")
    return False, float(config_ms)


class FrameScheduler:
    """The frame schedule of one stream: the next frame to emit and the batches that follow.

    `input_timeout_ms` and `absent_after_ms` may change between steps (live settings); the
    rest is fixed.
    """

    def __init__(self, model_lookahead_ms: float | None, config: StreamConfig) -> None:
        self.exact, self.lookahead_ms = effective_lookahead(model_lookahead_ms,
                                                            config.lookahead_ms)
        self.input_timeout_ms = config.input_timeout_ms
        # A shorter wait when a frame's deadline comes first (`StreamingEngine.set_wait_cap`)
        self.wait_cap_ms: float | None = None
        self.absent_after_ms = config.absent_after_ms
        self.need_offset = round(self.lookahead_ms * SAMPLE_RATE_HZ / 1000)  # samples
        self.window = round(config.window_ms * SAMPLE_RATE_HZ / 1000)  # samples
        self.hop_frames = round(config.hop_ms / FRAME_MS)
        # Fewest frames an exact-mode run emits: a hop, so a windowed run's cost is shared by
        # a hop of frames; an incremental stepper costs per frame and sets it to 1.
        self.min_batch_frames = self.hop_frames
        # Backlog allowed past the next frame's need() before a stall is skipped.
        self.backlog_limit = round(config.max_buffer_s * SAMPLE_RATE_HZ)  # samples
        self._check_sizes(config)
        self.reset()

    def _check_sizes(self, config: StreamConfig) -> None:
        hop = self.hop_frames * SAMPLES_PER_FRAME
        if not self.exact and hop > self.need_offset:
            raise ValueError(
                f"hop_ms={config.hop_ms} exceeds lookahead_ms={self.lookahead_ms}: the "
                "engine enforces the lookahead from one window per hop, so use hop_ms <= "
                "lookahead_ms")
        if self.window < self.need_offset + hop:
            raise ValueError(
                f"window_ms={config.window_ms} must be >= lookahead_ms + hop_ms = "
                f"{self.lookahead_ms + config.hop_ms}")

    @property
    def buffer_samples(self) -> int:
        """Samples an input must hold: the backlog, what any window reaches back over, the
        lookahead, and a second of slack for chunks arriving ahead of the schedule."""
        return self.backlog_limit + self.window + self.need_offset + SAMPLE_RATE_HZ

    def reset(self) -> None:
        """A new stream: frame 0 is next, nothing skipped."""
        self.next = 0  # next frame index to emit
        self.frames_skipped = 0  # jumped over after stalls longer than max_buffer_s

    def need(self, k: int) -> int:
        """Grid samples (of both inputs) frame k needs: [0, need(k))."""
        return k * SAMPLES_PER_FRAME + self.need_offset

    def keep_from(self, frame: int | None = None) -> int:
        """First grid sample any window from `frame` (default: the next) on can start at."""
        frame = self.next if frame is None else frame
        return max(0, (frame * SAMPLES_PER_FRAME - self.window) // SAMPLES_PER_FRAME) \
            * SAMPLES_PER_FRAME

    def next_batch(self, available: int, final: bool) -> Batch | None:
        """(k, m, e) of the next run when both inputs hold grid samples [0, available), or
        None. `final`: the input has ended, so the last frames go out without their lookahead.
        """
        k, hop = self.next, self.hop_frames
        n_exist = -(-available // SAMPLES_PER_FRAME)  # frames with at least one sample
        if self.exact:
            n_ready = n_exist if final else \
                (available - self.need_offset) // SAMPLES_PER_FRAME + 1
            most = (self.window - self.need_offset) // SAMPLES_PER_FRAME + 1
            m = min(n_ready - k, most)
            if m <= 0 or (m < self.min_batch_frames and not final):
                return None
            return k, m, min(self.need(k + m - 1), available)
        if self.need(k) <= available:
            return k, hop, self.need(k)
        if final and n_exist > k:
            return k, n_exist - k, available
        return None

    def advance_to(self, frame: int) -> None:
        """Frames before `frame` are out."""
        assert frame > self.next, (frame, self.next)
        self.next = frame

    def absent_before(self, now_rel_s: float) -> int:
        """Grid sample: an input whose received audio ends before it is absent at `now`."""
        return math.floor((now_rel_s - self.absent_after_ms / 1000) * SAMPLE_RATE_HZ)

    @property
    def wait_ms(self) -> float:
        """How long past its need a frame waits for missing audio."""
        if self.wait_cap_ms is None:
            return self.input_timeout_ms
        return min(self.input_timeout_ms, self.wait_cap_ms)

    def due(self, now_rel_s: float) -> int:
        """Grid samples up to which input is overdue at `now_rel_s` (s after the anchor)."""
        return math.floor((now_rel_s - self.wait_ms / 1000) * SAMPLE_RATE_HZ)

    def stall_resume_frame(self, due: int) -> int | None:
        """The frame to jump to when the input overdue at `due` outgrew the buffer, else None.

        Resuming one hop behind `due` makes the step that jumps emit frames again.
        """
        if due - self.need(self.next) <= self.backlog_limit:
            return None
        return (due - self.need_offset) // SAMPLES_PER_FRAME - self.hop_frames + 1

    def skip_to(self, frame: int) -> int:
        """Jump the schedule to `frame` after a stall; returns the frames skipped."""
        skipped = frame - self.next
        log.warning("stream stalled: skipping %d frames (%.1f s) to catch up", skipped,
                    skipped / FRAME_RATE_HZ)
        self.next = frame
        self.frames_skipped += skipped
        return skipped
