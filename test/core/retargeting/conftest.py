"""Shared checks of the retargeting tests: every command within every joint limit."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pytest

from dualtalk_core.retargeting import JointCommand, JointMap

# Relative slack for float rounding: velocities are position differences over dt, and
# accelerations differences of those (errors ~1e-16 / dt^2 at a 1 ms step are ~1e-10).
REL_TOL = 1e-6
ABS_TOL = 1e-9


def check_within_limits(commands: Sequence[JointCommand], joint_map: JointMap) -> None:
    """Assert what the retargeter promises over one stream started at rest (after a reset):
    finite output, positions in [min, max], |dp/dt| <= max velocity, |dv/dt| <= max
    acceleration, reported velocity = position change / dt, held frames repeating the last."""
    lo, hi, vmax, amax = (np.array([getattr(j, k) for j in joint_map.joints]) for k in (
        "min_rad", "max_rad", "max_velocity_rad_s", "max_acceleration_rad_s2"))
    prev: JointCommand | None = None
    for k, cmd in enumerate(commands):
        p, v = cmd.positions_rad, cmd.velocities_rad_s
        assert np.all(np.isfinite(p)) and np.all(np.isfinite(v)) and np.isfinite(cmd.t_s), k
        assert np.all(p >= lo - ABS_TOL) and np.all(p <= hi + ABS_TOL), (k, p)
        if prev is None:
            assert not cmd.held and np.all(v == 0.0), k  # a stream starts at rest
        elif cmd.held:
            assert np.array_equal(p, prev.positions_rad), k
            assert np.array_equal(v, prev.velocities_rad_s), k
        else:
            dt = cmd.t_s - prev.t_s
            assert dt > 0, (k, dt)
            np.testing.assert_allclose(v, (p - prev.positions_rad) / dt, rtol=1e-9, atol=1e-9)
            assert np.all(np.abs(v) <= vmax * (1 + REL_TOL) + ABS_TOL), (k, v)
            accel = np.abs(v - prev.velocities_rad_s) / dt
            assert np.all(accel <= amax * (1 + REL_TOL) + 1e-6), (k, accel, amax)
        prev = cmd


@pytest.fixture
def within_limits() -> Callable[[Sequence[JointCommand], JointMap], None]:
    return check_within_limits
