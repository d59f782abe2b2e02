"""When a computed frame is published: at its stamp + a delay derived from measured figures.

A frame can be computed once the audio up to its lookahead has arrived (in chunks) and the
model has run; publishing every frame at stamp + one delay turns that into a steady 25 fps
stream. The delay is the node's whole pipeline: the robot's own voice must be played that much
after it is published for lips and sound to meet (`pipeline_delay` topic).

Derived (`output.delay_ms` < 0): at start, lookahead + one input chunk + a model run + the
batching wait + the margin; then every re-check takes the larger of
- the 99th percentile of the measured frame latencies (frame ready minus its stamp, frames
  that waited for missing audio left out) over the last 10 s, and
- lookahead + the inputs' measured arrival lateness (99th percentile, at most the input
  timeout) + the batching wait + a model run (99th percentile),
plus the margin. It raises the delay at once when frames would be late, and lowers it by one
5 ms step every 2.5 s (2 ms a second): a player that started an utterance at the old delay sees
its lips drift by a few ms, within the jitter it sees anyway, instead of a burst of frames.

A derived delay is also each frame's deadline: audio still missing when waiting longer would
make the frame late is taken as silence (`wait_cap_ms`, the engine's `set_wait_cap`). A stalled
or ended voice then costs silence, not a late face; the lateness term keeps a source whose
chunks are long (100 ms) from losing audio to that deadline.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from dualtalk_ros.bridge.node_settings import OutputSettings

ASSUMED_CHUNK_MS = 32.0  # an audio chunk before any has arrived (512 samples at 16 kHz)
ASSUMED_COMPUTE_MS = 20.0  # a windowed run before any was timed (lite, 8 s window: ~8-25 ms)
ASSUMED_STEP_MS = 2.0  # an incremental step (lite: ~1 ms p99)
LOWER_MS_PER_S = 2.0  # a derived delay falls this slowly: an utterance's lips drift unseen
LATE_TOLERANCE_S = 0.02  # published later than its slot by more than this: a late frame
WINDOW_FRAMES = 250  # latencies kept for a re-check: the last 10 s of frames
WINDOW_RUNS = 250  # model runs timed for a re-check
GUARD_MS = 5.0  # a frame's model run ends this long before its slot: the pacing timer's period
ROUND_MS = 5.0  # derived delays are whole multiples of this (the pacing timer's period)


@dataclass(frozen=True)
class PacingReport:
    """What /diagnostics says about the output's timing (ms)."""

    delay_ms: float  # frames are published at stamp + this
    derived: bool  # the delay follows the measurements (output.delay_ms < 0)
    required_ms: float | None  # p99 of the measured latencies + margin; None before any
    latency_p50_ms: float | None  # frame ready minus its stamp
    latency_p99_ms: float | None
    started: bool  # past start-up: late frames now warn
    arrival_lateness_ms: float | None = None  # inputs' chunks: first sample to arrival, p99
    wait_cap_ms: float | None = None  # the deadline's wait for missing audio; None: no cap


class OutputPacer:
    """The delay, the measured latencies, and whether a frame is due or late."""

    def __init__(self, settings: OutputSettings, lookahead_ms: float, batch_wait_ms: float,
                 incremental: bool = False) -> None:
        self.derived = settings.delay_ms < 0
        self.margin_ms = settings.delay_margin_ms
        self.lookahead_ms, self.batch_wait_ms = lookahead_ms, batch_wait_ms
        self._assumed_compute_ms = ASSUMED_STEP_MS if incremental else ASSUMED_COMPUTE_MS
        self._latencies: collections.deque[float] = collections.deque(maxlen=WINDOW_FRAMES)
        self._compute_s: collections.deque[float] = collections.deque(maxlen=WINDOW_RUNS)
        start = self._pipeline_ms(ASSUMED_CHUNK_MS) + self.margin_ms
        self.delay_ms = _round_up(start) if self.derived else settings.delay_ms
        self._changed_at_s: float | None = None  # node clock of the last change (or of start)
        self.started = False

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1000.0

    def configure(self, settings: OutputSettings) -> None:
        """A live change of output.*: a fixed delay applies at once; a derived one keeps its
        current value and follows the next re-check."""
        self.derived, self.margin_ms = settings.delay_ms < 0, settings.delay_margin_ms
        if not self.derived:
            self.delay_ms = settings.delay_ms

    def observe(self, ready_s: float, stamps_s: list[float]) -> None:
        """Frames stamped `stamps_s` were computed at `ready_s` (the node's clock)."""
        self._latencies.extend(ready_s - t for t in stamps_s)

    def observe_compute(self, seconds: float) -> None:
        """A step that emitted frames took `seconds` of wall time."""
        self._compute_s.append(seconds)

    @property
    def compute_ms(self) -> float:
        """A model run, 99th percentile of the recent ones (assumed before any)."""
        if not self._compute_s:
            return self._assumed_compute_ms
        return float(np.percentile(np.asarray(self._compute_s), 99)) * 1000.0

    def _pipeline_ms(self, lateness_ms: float) -> float:
        """Stamp to published for a frame whose input arrived `lateness_ms` after its need."""
        return self.lookahead_ms + lateness_ms + self.batch_wait_ms + self.compute_ms

    @property
    def wait_cap_ms(self) -> float | None:
        """How long past its need a frame can wait for missing audio and still be computed by
        its slot; None with a fixed delay (its frames wait input_timeout_ms, as configured)."""
        if not self.derived:
            return None
        return max(0.0, self.delay_ms - self._pipeline_ms(0.0) - GUARD_MS)

    def recheck(self, now_s: float, lateness_ms: float | None = None) -> PacingReport:
        """At node time `now_s`, the inputs' arrival lateness being `lateness_ms` (p99, capped
        at the input timeout; None: unknown): raise a derived delay to what the last seconds
        needed, or lower it a step when it has been steady for a step at LOWER_MS_PER_S;
        start-up ends at the first re-check with a second of frames."""
        lat = np.asarray(self._latencies)
        p50 = p99 = required = None
        if self._changed_at_s is None:
            self._changed_at_s = now_s
        if len(lat):
            p50, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 99))
            inputs = -math.inf if lateness_ms is None else self._pipeline_ms(lateness_ms)
            required = max(p99, inputs) + self.margin_ms
            if self.derived and required > self.delay_ms:
                self.delay_ms, self._changed_at_s = _round_up(required), now_s
            elif (self.derived and len(lat) >= 25 and _round_up(required) < self.delay_ms
                  and now_s - self._changed_at_s >= ROUND_MS / LOWER_MS_PER_S):
                self.delay_ms = max(_round_up(required), self.delay_ms - ROUND_MS)
                self._changed_at_s = now_s
        if len(lat) >= 25:
            self.started = True
        return PacingReport(self.delay_ms, self.derived, required, p50, p99, self.started,
                            lateness_ms, self.wait_cap_ms)

    def due(self, stamp_s: float, now_s: float) -> bool:
        return stamp_s + self.delay_s <= now_s

    def late(self, stamp_s: float, now_s: float) -> bool:
        """Published more than 20 ms after its slot (only counted after start-up)."""
        return now_s - stamp_s - self.delay_s > LATE_TOLERANCE_S


def _round_up(ms: float) -> float:
    """Up to a whole multiple of ROUND_MS (a float's last bit does not add 5 ms)."""
    return math.ceil(ms / ROUND_MS - 1e-9) * ROUND_MS
