"""The streaming retargeter: follows its sources, smooths as a first-order low-pass, brakes
before limits without overshoot, and keeps every limit under adversarial input (steps, NaN,
huge values, bad quaternions, jittered, repeated and backwards stamps, long gaps)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dualtalk_core.retargeting import (JointMap, JointSpec, Retargeter, load_joint_map,
                                       yaw_pitch_roll)
from dualtalk_core.rigs import get_rig

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "retarget" / "neck_jaw.yaml"
RIG = get_rig("arkit52")
JAW = RIG.names.index("jawOpen")
ID = np.array([0.0, 0.0, 0.0, 1.0])


def _one(**kw) -> JointMap:
    """One joint on jawOpen, limits generous enough not to bind unless `kw` says otherwise."""
    spec = dict(name="j", source="jawOpen", min_rad=-5.0, max_rad=5.0, max_velocity_rad_s=100.0,
                max_acceleration_rad_s2=1e5)
    return JointMap((JointSpec(**{**spec, **kw}),))


def _frame(jaw: float) -> np.ndarray:
    values = np.zeros(RIG.dim)
    values[JAW] = jaw
    return values


def _run(rt: Retargeter, times, jaws):
    return [rt.step(t, _frame(x), ID) for t, x in zip(times, jaws)]


def _positions(commands) -> np.ndarray:
    return np.array([c.positions_rad for c in commands])  # (T, J)


def test_head_angles_invert_the_rigs_quaternion():
    rng = np.random.default_rng(0)
    values = np.zeros((200, RIG.dim))
    values[:, -3:] = rng.uniform(-1.2, 1.2, (200, 3))  # headPitch, headYaw, headRoll
    quats = RIG.head_quaternion(values)
    angles = yaw_pitch_roll(quats)  # (T, 3) yaw, pitch, roll
    np.testing.assert_allclose(angles, values[:, [-2, -3, -1]], atol=1e-12)
    np.testing.assert_allclose(yaw_pitch_roll(-3.0 * quats), angles, atol=1e-12)
    flame = get_rig("flame56")
    pose = np.zeros(flame.dim)
    pose[54] = 0.3  # FLAME's head rotation about its y axis (up): a yaw
    np.testing.assert_allclose(yaw_pitch_roll(flame.head_quaternion(pose)), [0.3, 0, 0],
                               atol=1e-12)


def test_joint_follows_its_channel_with_gain_and_offset_where_no_limit_binds():
    jaws = 0.5 + 0.4 * np.sin(np.arange(200) / 3.0)
    rt = Retargeter(_one(gain=0.6, offset_rad=0.05), RIG.names)
    rt.reset([0.6 * jaws[0] + 0.05])  # start where the face is: no catching up
    commands = _run(rt, np.arange(200) / 25, jaws)
    np.testing.assert_allclose(_positions(commands)[:, 0], 0.6 * jaws + 0.05, atol=1e-12)
    assert rt.stats()["steps"] == 200
    assert sum(v for k, v in rt.stats().items() if k.endswith("_clamps")) == 0


def test_from_the_neutral_start_the_joint_catches_up_within_a_few_frames():
    rt = Retargeter(_one(gain=0.6), RIG.names)
    commands = _run(rt, np.arange(10) / 25, np.full(10, 0.5))
    p = _positions(commands)[:, 0]
    assert p[0] == 0.0 and np.all(np.diff(p) >= 0) and abs(p[4] - 0.3) < 1e-9


def test_smoothing_is_a_first_order_low_pass_for_any_frame_times():
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.02, 0.06, 80))
    jaws = np.where(np.arange(80) < 10, 0.0, 1.0)  # a step at frame 10
    rt = Retargeter(_one(smoothing_ms=100.0), RIG.names)
    p = _positions(_run(rt, times, jaws))[:, 0]
    expected = np.where(np.arange(80) < 10, 0.0, 1.0 - np.exp(-(times - times[9]) / 0.1))
    np.testing.assert_allclose(p, expected, atol=1e-12)
    raw = Retargeter(_one(), RIG.names)
    np.testing.assert_allclose(_positions(_run(raw, times, jaws))[:, 0], jaws, atol=1e-12)


def test_a_step_is_approached_without_overshoot_within_the_limits(within_limits):
    joint_map = _one(gain=1.0, max_velocity_rad_s=2.0, max_acceleration_rad_s2=10.0)
    rt = Retargeter(joint_map, RIG.names)
    times = np.arange(100) / 25
    commands = _run(rt, times, np.where(times < 0.2, 0.0, 0.5))
    within_limits(commands, joint_map)
    p = _positions(commands)[:, 0]
    assert np.all(np.diff(p) >= -1e-12) and p.max() <= 0.5 + 1e-12
    assert abs(p[-1] - 0.5) < 1e-9  # arrived: 0.5 rad takes ~0.45 s at 10 rad/s^2
    stats = rt.stats()
    assert stats["acceleration_clamps"] > 0 and stats["velocity_clamps"] == 0


def test_the_joint_brakes_to_a_stop_at_its_position_limit(within_limits):
    joint_map = _one(gain=1.0, max_rad=0.3, max_velocity_rad_s=2.0, max_acceleration_rad_s2=10.0)
    rt = Retargeter(joint_map, RIG.names)
    times = np.arange(100) / 25
    commands = _run(rt, times, np.where(times < 0.2, -0.4, 9.0))  # far beyond max_rad
    within_limits(commands, joint_map)
    p = _positions(commands)[:, 0]
    assert p.max() <= 0.3 and abs(p[-1] - 0.3) < 1e-9 and commands[-1].velocities_rad_s[0] == 0
    stats = rt.stats()
    assert stats["position_clamps"] > 0 and stats["velocity_clamps"] > 0
    assert stats["acceleration_clamps"] > 0


def test_bad_values_and_quaternions_hold_the_last_good_one_and_are_counted():
    joint_map = JointMap((dataclasses.replace(_one().joints[0], source=(("jawOpen", 1.0),)),
                          JointSpec("yaw", (("head.yaw", 1.0),), -1.0, 1.0, 100.0, 1e5)))
    rt = Retargeter(joint_map, RIG.names)
    yaw = RIG.head_quaternion(np.array([0.0, 0.2, 0.0]) @ np.eye(3, RIG.dim, RIG.dim - 3))
    rt.step(0.0, _frame(0.3), yaw)  # starts at rest at 0, heading for (0.3, 0.2)
    for k, bad in enumerate([np.nan, np.inf, -np.inf, 1e30, -11.0]):
        cmd = rt.step(0.04 * (k + 1), _frame(bad), np.array([np.nan, 0, 0, 1]))
        assert np.all(cmd.positions_rad > 0.1)  # still heading for the last good values
    np.testing.assert_allclose(cmd.positions_rad, [0.3, 0.2], atol=1e-9)
    for k, quat in enumerate([np.zeros(4), np.full(4, 1e30), np.array([0, 0, 0, 1.5])]):
        cmd = rt.step(0.24 + 0.04 * k, _frame(0.3), quat)
    np.testing.assert_allclose(cmd.positions_rad, [0.3, 0.2], atol=1e-9)  # the held yaw
    stats = rt.stats()
    assert stats["rejected_values"] == 5 and stats["rejected_quaternions"] == 8


def test_repeated_or_backward_stamps_repeat_the_command_and_restart_the_time_base():
    rt = Retargeter(_one(gain=1.0, max_velocity_rad_s=1.0, max_acceleration_rad_s2=10.0),
                    RIG.names)
    first = _run(rt, [0.0, 0.04, 0.08], [0.0, 0.5, 0.5])
    again = rt.step(0.08, _frame(0.9), ID)
    back = rt.step(-5.0, _frame(0.9), ID)
    assert again.held and back.held and back.t_s == -5.0
    assert np.array_equal(back.positions_rad, first[-1].positions_rad)
    assert np.array_equal(back.velocities_rad_s, first[-1].velocities_rad_s)
    resumed = rt.step(-4.96, _frame(0.9), ID)  # dt measured from the new time base
    assert not resumed.held
    assert abs(resumed.velocities_rad_s[0] - first[-1].velocities_rad_s[0]) <= 10.0 * 0.04 + 1e-9
    assert rt.stats()["held_frames"] == 2 and rt.stats()["steps"] == 4
    with pytest.raises(ValueError, match="t_s must be a finite time"):
        rt.step(float("nan"), _frame(0.0), ID)
    with pytest.raises(ValueError, match=r"expected values \(55,\) and head_quaternion \(4,\)"):
        rt.step(1.0, np.zeros(52), ID)


def test_a_long_gap_stops_the_joint_where_it_is_then_resumes_from_rest(within_limits):
    joint_map = _one(gain=1.0, max_velocity_rad_s=2.0, max_acceleration_rad_s2=10.0)
    rt = Retargeter(joint_map, RIG.names)
    times = [0.0, 0.04, 0.08, 0.12, 1.12, 1.16, 1.20]  # a one-second stall after frame 3
    commands = _run(rt, times, [0.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    within_limits(commands, joint_map)
    assert rt.stats()["gaps"] == 1
    gap = commands[4]
    assert gap.velocities_rad_s[0] == 0.0  # at rest, where frame 3 left it
    assert gap.positions_rad[0] == commands[3].positions_rad[0]
    assert abs(commands[5].velocities_rad_s[0]) <= 10.0 * 0.04 + 1e-9  # no jump after it


def test_reset_starts_at_the_given_positions_at_rest():
    joint_map = load_joint_map(EXAMPLE, RIG.names)
    rt = Retargeter(joint_map, RIG.names)
    rt.step(0.0, _frame(1.0), ID)
    rt.step(0.04, _frame(1.0), ID)
    assert rt.stats()["steps"] == 2
    start = np.linspace(-1, 1, len(joint_map.joints))
    rt.reset(start)
    cmd = rt.step(7.0, _frame(0.0), ID)
    lo, hi = (np.array([getattr(j, k) for j in joint_map.joints]) for k in ("min_rad", "max_rad"))
    np.testing.assert_array_equal(cmd.positions_rad, np.clip(start, lo, hi))
    assert not cmd.velocities_rad_s.any() and rt.stats()["steps"] == 1
    with pytest.raises(ValueError, match="reset: expected 7 finite positions"):
        rt.reset([0.0, np.nan, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="not a channel"):
        Retargeter(joint_map, get_rig("flame56").names)


def _adversarial_stream(rng: np.random.Generator, n: int):
    """Stamps, values and quaternions meant to break limits: steps between extremes, NaN, inf,
    1e30, random head turns past every limit, jitter, repeats, backward jumps and stalls."""
    dt = rng.uniform(0.001, 0.08, n)
    kind = rng.random(n)
    dt[kind < 0.03] = 0.0
    dt[(kind >= 0.03) & (kind < 0.05)] = -rng.uniform(0.01, 3.0)
    dt[(kind >= 0.05) & (kind < 0.07)] = rng.uniform(0.25, 4.0)
    times = 100.0 + np.cumsum(dt)
    levels = np.repeat(rng.choice([-1.0, 0.0, 0.5, 1.0, 3.0], size=n // 10 + 1), 10)[:n]
    values = levels[:, None] + rng.normal(0, 0.3, (n, RIG.dim))
    bad = rng.random((n, RIG.dim)) < 0.02
    values[bad] = rng.choice([np.nan, np.inf, -np.inf, 1e30, -1e30], size=int(bad.sum()))
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    quats[rng.random(n) < 0.03] = np.nan
    quats[rng.random(n) < 0.02] = 1e300
    return times, values, quats, int(bad.sum())


@pytest.mark.parametrize("seed", range(4))
def test_adversarial_input_never_breaks_a_limit(seed, within_limits):
    joint_map = load_joint_map(EXAMPLE, RIG.names)
    stiff = JointSpec("locked", (("jawOpen", 50.0), ("head.roll", -3.0)), 0.1, 0.1, 0.5, 1.0)
    joint_map = dataclasses.replace(joint_map, joints=joint_map.joints + (stiff,))
    rng = np.random.default_rng(seed)
    times, values, quats, n_bad = _adversarial_stream(rng, 3000)
    rt = Retargeter(joint_map, RIG.names)
    commands = [rt.step(t, x, q) for t, x, q in zip(times, values, quats)]
    within_limits(commands, joint_map)
    stats = rt.stats()
    held = int(np.sum(np.diff(times) <= 0))
    assert stats["held_frames"] == held and stats["steps"] == len(times) - held
    assert stats["rejected_values"] == n_bad and stats["rejected_quaternions"] > 0
    assert stats["gaps"] > 0 and min(stats[f"{k}_clamps"] for k in (
        "position", "braking", "velocity", "acceleration")) > 0
