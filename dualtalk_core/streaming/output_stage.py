"""The engine's last stage: raw model frames -> smoothed, stamped `Frame`s with a head pose."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dualtalk_core import rigs
from dualtalk_core.streaming.smoothing import OneEuroConfig, OneEuroFilter
from dualtalk_core.units import FRAME_RATE_HZ


@dataclass(frozen=True)
class Frame:
    """One output frame: `values` (C,) in the model's rig order at time `t` (seconds)."""

    t: float
    values: np.ndarray  # (C,) float32
    head_quaternion: np.ndarray  # (4,) x, y, z, w: Rig.head_quaternion(values)
    index: int  # k: frames since the stream's anchor
    # Computed only when the wait for missing audio ran out (silence filled in): its latency
    # says nothing about the pipeline's (a pacer leaves it out).
    waited: bool = False


class OutputStage:
    """Smooths frames in emission order and counts them (emitted; held partner face)."""

    def __init__(self, rig: rigs.Rig, smoothing: OneEuroConfig) -> None:
        self.rig = rig
        self._lower, self._upper = rig.range_arrays()
        self._smoother = OneEuroFilter(smoothing)
        self.reset()

    def reset(self) -> None:
        """A new stream: the filter starts over and the counters from zero."""
        self.restart()
        self.frames_emitted = 0
        self.held_frames = 0  # frames without a partner face of their own (held/neutral)
        self.clipped_values = 0  # channel values brought back into the rig's range

    def restart(self) -> None:
        """After a stall skip: the filter starts over (the frames do not follow on); counters
        go on."""
        self._smoother.reset()
        self._last_raw: np.ndarray = self.rig.neutral_array().astype(np.float32)  # (C,)

    def guard(self, values: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """(m, C) raw frames with non-finite rows `bad` (m,) -> rows replaced by the last good
        raw frame (neutral before any): NaN must never reach the smoother's state."""
        out = values.copy()
        last = self._last_raw
        for j in range(len(out)):
            if bad[j]:
                out[j] = last
            else:
                last = out[j]
        return out

    def set_smoothing(self, smoothing: OneEuroConfig) -> None:
        """New filter settings from the next frame on. Toggling `enabled` restarts the filter:
        a disabled filter keeps no state, and one held from before would be stale."""
        if smoothing.enabled != self._smoother.config.enabled:
            self._smoother.reset()
        self._smoother.config = smoothing

    def frames(self, k: int, values: np.ndarray, t0: float, has_face: Callable[[int], bool],
               waited: Callable[[int], bool]) -> list[Frame]:
        """(m, C) raw frames k..k+m-1 of the stream anchored at `t0` -> m `Frame`s."""
        frames = []
        for j, row in enumerate(values):
            t = t0 + (k + j) / FRAME_RATE_HZ
            self._last_raw = row
            smoothed = self._smoother(row, t)
            if not np.isfinite(smoothed).all():  # cannot happen from finite input: start over
                self._smoother.reset()
                smoothed = self._smoother(row, t)
            # The model can leave a channel's range (a blendshape below 0 at a stream's start,
            # a brow at -0.1): the consumer gets the rig's contract, and the count says so.
            row = np.clip(smoothed, self._lower, self._upper)
            self.clipped_values += int(np.count_nonzero(row != smoothed))
            quat = self.rig.head_quaternion(row).astype(np.float32)
            frames.append(Frame(t, row, quat, k + j, waited(k + j)))
            self.held_frames += int(not has_face(k + j))
        self.frames_emitted += len(frames)
        return frames
