"""One step of joint motion within position, velocity and acceleration limits (all joints at once).

Each step picks the joint's new velocity v' (its position follows: p' = p + v' dt) from the
intersection of three intervals:

- acceleration: |v' - v| <= a dt;
- velocity: |v'| <= v_max;
- position, with braking: after the step the joint must still be able to stop inside
  [min, max] at deceleration a, i.e. v'^2 / (2 a) <= the distance left ahead of it. Solving
  v'^2 / (2 a) + v' dt <= max - p for v' gives `stopping_speed(max - p, dt, a)`; the same bound
  mirrored holds towards min. This also keeps p' itself within [min, max].

The intersection is never empty when the previous step kept these rules (and a reset starts at
rest inside the limits): full braking, v' = sign(v) max(|v| - a dt, 0), lies in all three, since
it leaves v'^2 / (2 a) + v' dt = v^2 / (2 a) - a dt^2 / 2 when still moving. The continuous
stopping distance v^2 / (2 a) bounds the distance any later sequence of braking steps covers,
whatever their dt, so varying frame times keep the guarantee. The desired velocity is clipped
into the interval; a final clip of p' to [min, max] only removes floating-point rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Which bound cut the desired velocity, per joint (the first one, in this order, on a tie).
BOUND_NONE, BOUND_ACCELERATION, BOUND_VELOCITY, BOUND_BRAKING = 0, 1, 2, 3


@dataclass(frozen=True)
class JointLimits:
    """The limits of J revolute joints, each a (J,) float64 array."""

    min_rad: np.ndarray
    max_rad: np.ndarray
    max_velocity_rad_s: np.ndarray
    max_acceleration_rad_s2: np.ndarray


def stopping_speed(distance_rad: np.ndarray, dt_s: float,
                   max_acceleration_rad_s2: np.ndarray) -> np.ndarray:
    """The highest speed v >= 0 to move at for dt and still stop within `distance_rad`:
    v^2 / (2 a) + v dt <= distance (0 where the distance is <= 0)."""
    a_dt = max_acceleration_rad_s2 * dt_s
    room = 2.0 * max_acceleration_rad_s2 * np.maximum(distance_rad, 0.0)
    return np.sqrt(a_dt * a_dt + room) - a_dt


def limit_step(position_rad: np.ndarray, velocity_rad_s: np.ndarray,
               desired_velocity_rad_s: np.ndarray, dt_s: float,
               limits: JointLimits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(J,) state and desired velocity -> (J,) new position, new velocity, the bound that cut.

    `dt_s` > 0. The returned velocity is the position change over dt, so a caller publishing both
    publishes a consistent pair.
    """
    p, v = position_rad, velocity_rad_s
    a_dt = limits.max_acceleration_rad_s2 * dt_s
    vmax = limits.max_velocity_rad_s
    a = limits.max_acceleration_rad_s2
    upper = np.stack([v + a_dt, vmax, stopping_speed(limits.max_rad - p, dt_s, a)])  # (3, J)
    lower = np.stack([v - a_dt, -vmax, -stopping_speed(p - limits.min_rad, dt_s, a)])
    high, low = upper.min(axis=0), lower.max(axis=0)
    # np.clip takes `high` should rounding ever cross the bounds: the braking side wins.
    chosen = np.clip(desired_velocity_rad_s, low, high)
    bound = np.where(desired_velocity_rad_s > high, upper.argmin(axis=0) + 1, BOUND_NONE)
    bound = np.where(desired_velocity_rad_s < low, lower.argmax(axis=0) + 1, bound)
    new_p = np.clip(p + chosen * dt_s, limits.min_rad, limits.max_rad)
    return new_p, (new_p - p) / dt_s, bound
