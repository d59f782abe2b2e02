"""Streaming retargeting: one face frame (rig values + head quaternion) in, one joint command out.

Per joint and frame, in this order (docs/retargeting.md):

1. value: the weighted sum of its sources, rig channels and head angles (rad);
2. target = gain * value + offset_rad, clipped to [min_rad, max_rad] (so a saturated input does
   not wind the low-pass up);
3. smoothing: a first-order low-pass, time constant `smoothing_ms` (0 = off), exact for any dt;
4. tracking: desired velocity = the target's own velocity plus the speed that can still stop at
   the target under the acceleration limit (a step is approached without overshoot);
5. limits (`limits.limit_step`): acceleration, velocity and position with braking, applied
   together, so the command never leaves [min, max], never moves faster than max_velocity and
   never changes velocity faster than max_acceleration, stops at a limit included.

Robustness: a non-finite input value, or one beyond `rigs.MAX_ABS_VALUE`, is replaced by that
channel's last good value (0 before any); a non-finite or far-from-unit quaternion by the last
good one (identity before any); both counted. A frame not later than the previous one (time
going backwards, a repeated stamp) returns the previous command again (`held`), starts the time
base over at its stamp and is counted. A pause longer than the map's `max_gap_ms` brings the
joints to rest where they are (within the acceleration limit) and restarts the low-pass at the
new target: the robot is not sent across its range in one command after a stall.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dualtalk_core import rigs
from dualtalk_core.retargeting.head_angles import yaw_pitch_roll
from dualtalk_core.retargeting.joint_map import JointMap, source_matrix
from dualtalk_core.retargeting.limits import (BOUND_ACCELERATION, BOUND_BRAKING, BOUND_VELOCITY,
                                              JointLimits, limit_step, stopping_speed)

# A unit quaternion off by more than this is corrupted, not merely unnormalised.
QUATERNION_NORM_TOLERANCE = 0.1
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


@dataclass(frozen=True)
class JointCommand:
    """One command: `positions_rad` and `velocities_rad_s` (J,) in `names` order at `t_s`.

    `held`: this frame was not applied (its time was not after the previous frame's); the
    positions and velocities are the previous command's.
    """

    t_s: float
    names: tuple[str, ...]
    positions_rad: np.ndarray  # (J,) float64
    velocities_rad_s: np.ndarray  # (J,) float64
    held: bool = False


_COUNTERS = ("steps", "held_frames", "gaps", "rejected_values", "rejected_quaternions",
             "position_clamps", "braking_clamps", "velocity_clamps", "acceleration_clamps")


class Retargeter:
    """Turns a stream of face frames into joint commands within each joint's limits.

    `rig_names`: the channel names of the frames' values, in order (`engine.rig.names`).
    """

    def __init__(self, joint_map: JointMap, rig_names: Sequence[str]) -> None:
        if not isinstance(joint_map, JointMap):
            raise TypeError(f"expected a JointMap, got {type(joint_map).__name__}")
        self.joint_map = joint_map
        self.names = joint_map.names
        self.n_channels = len(rig_names)
        self._weights = source_matrix(joint_map, rig_names)  # (J, C + 3)
        self._reads_head = bool(np.any(self._weights[:, self.n_channels:]))
        joints = joint_map.joints
        self.limits = JointLimits(*(np.array([getattr(j, k) for j in joints]) for k in (
            "min_rad", "max_rad", "max_velocity_rad_s", "max_acceleration_rad_s2")))
        self._gain = np.array([j.gain for j in joints])
        self._offset = np.array([j.offset_rad for j in joints])
        self._tau_s = np.array([j.smoothing_ms for j in joints]) / 1000.0
        self._max_gap_s = joint_map.max_gap_ms / 1000.0
        self.reset()

    def reset(self, positions_rad: np.ndarray | Sequence[float] | None = None) -> None:
        """A new stream: start at rest at `positions_rad` (e.g. the robot's measured joint
        positions, clipped to the limits), by default at each joint's neutral-face position
        (offset_rad, clipped); counters from zero."""
        lo, hi = self.limits.min_rad, self.limits.max_rad
        start = self._offset if positions_rad is None else np.asarray(positions_rad, float)
        if start.shape != lo.shape or not np.all(np.isfinite(start)):
            raise ValueError(f"reset: expected {len(self.names)} finite positions "
                             f"({', '.join(self.names)}), got {positions_rad!r}")
        self._p = np.clip(start, lo, hi)  # (J,) commanded position
        self._v = np.zeros_like(self._p)  # (J,) commanded velocity
        self._target = self._p.copy()  # (J,) smoothed target
        self._t: float | None = None  # time of the last applied frame
        self._values = np.zeros(self.n_channels)  # last good input values (C,)
        self._quat = _IDENTITY.copy()
        self._last = JointCommand(math.nan, self.names, self._p.copy(), self._v.copy())
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def stats(self) -> dict[str, int]:
        """Counters since the last reset, for diagnostics: frames applied (`steps`), `held_frames`,
        `gaps`, rejected input values and quaternions, and per kind the joint-frames whose
        request a limit cut: `position_clamps` (target outside [min, max]), `braking_clamps`
        (slowing ahead of a position limit), `velocity_clamps`, `acceleration_clamps`."""
        return dict(self._counts)

    def step(self, t_s: float, values: np.ndarray, head_quaternion: np.ndarray) -> JointCommand:
        """One frame: (C,) rig values and a (4,) head quaternion (x, y, z, w) at `t_s` seconds
        -> the joint command for that time."""
        t_s = float(t_s)
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be a finite time in seconds, got {t_s!r}")
        inputs = self._inputs(values, head_quaternion)  # (C + 3,)
        if self._t is not None and t_s <= self._t:
            self._t = t_s
            self._counts["held_frames"] += 1
            self._last = JointCommand(t_s, self.names, self._last.positions_rad,
                                      self._last.velocities_rad_s, held=True)
            return self._last
        target = self._gain * (self._weights @ inputs) + self._offset  # (J,)
        outside = (target < self.limits.min_rad) | (target > self.limits.max_rad)
        self._counts["position_clamps"] += int(np.count_nonzero(outside))
        target = np.clip(target, self.limits.min_rad, self.limits.max_rad)
        if self._t is None:  # the first frame: the command stays at rest where it starts
            self._t, self._target = t_s, target
            return self._command(t_s)
        dt, self._t = t_s - self._t, t_s
        if dt > self._max_gap_s:  # stop, and start the low-pass over at the new target
            self._counts["gaps"] += 1
            self._target, desired = target, np.zeros_like(target)
        else:
            desired = self._desired_velocity(target, dt)
        self._p, self._v, bound = limit_step(self._p, self._v, desired, dt, self.limits)
        for kind, code in (("braking", BOUND_BRAKING), ("velocity", BOUND_VELOCITY),
                           ("acceleration", BOUND_ACCELERATION)):
            self._counts[f"{kind}_clamps"] += int(np.count_nonzero(bound == code))
        return self._command(t_s)

    def _command(self, t_s: float) -> JointCommand:
        self._counts["steps"] += 1
        self._last = JointCommand(t_s, self.names, self._p.copy(), self._v.copy())
        return self._last

    def _desired_velocity(self, target: np.ndarray, dt: float) -> np.ndarray:
        """Low-pass the target, then aim to move with it and close the distance left behind it
        no faster than the joint could brake to a stop there (no overshoot on a step)."""
        alpha = np.where(self._tau_s > 0.0, -np.expm1(-dt / np.maximum(self._tau_s, 1e-12)), 1.0)
        previous = self._target
        self._target = previous + alpha * (target - previous)
        behind = previous - self._p  # where the target was, relative to the command
        closing = stopping_speed(np.abs(behind), dt, self.limits.max_acceleration_rad_s2)
        return (self._target - previous) / dt + np.sign(behind) * closing

    def _inputs(self, values: np.ndarray, head_quaternion: np.ndarray) -> np.ndarray:
        """(C,) values and (4,) quaternion -> (C + 3,) [values, yaw, pitch, roll], each bad
        entry replaced by its last good value and counted."""
        x = np.asarray(values, dtype=np.float64)
        q = np.asarray(head_quaternion, dtype=np.float64)
        if x.shape != (self.n_channels,) or q.shape != (4,):
            raise ValueError(f"expected values ({self.n_channels},) and head_quaternion (4,), "
                             f"got {x.shape} and {q.shape}")
        with np.errstate(invalid="ignore"):
            good = np.abs(x) <= rigs.MAX_ABS_VALUE  # False for NaN too
        if not good.all():
            self._counts["rejected_values"] += int(np.count_nonzero(~good))
            x = np.where(good, x, self._values)
        self._values = x
        if not self._reads_head:
            return np.concatenate([x, np.zeros(3)])
        with np.errstate(over="ignore", invalid="ignore"):
            norm = float(np.linalg.norm(q))  # NaN or inf for a non-finite quaternion
        if abs(norm - 1.0) <= QUATERNION_NORM_TOLERANCE:
            self._quat = q / norm
        else:
            self._counts["rejected_quaternions"] += 1
        return np.concatenate([x, yaw_pitch_roll(self._quat)])
