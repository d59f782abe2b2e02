"""Blink rate and head motion per conversational role: known signals give known figures."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.audio import voice_activity
from dualtalk_core.evaluation import aliveness
from dualtalk_core.rigs import get_rig
from dualtalk_core.units import SAMPLES_PER_FRAME

RIG = get_rig("arkit52")
T = 1500  # 60 s at 25 fps


def _speech(active_frames: np.ndarray) -> np.ndarray:
    """Noise at -20 dBFS in the active frames, -80 dBFS elsewhere."""
    rng = np.random.default_rng(0)
    gain = np.where(np.repeat(active_frames, SAMPLES_PER_FRAME), 0.1, 1e-4)
    return (gain * rng.standard_normal(len(gain))).astype(np.float32)


def test_roles_follow_the_voices_and_bridge_short_pauses():
    k = np.arange(T)
    own = (k < 500) & (k % 50 != 0)  # speaks for 20 s with 40 ms gaps between words
    other = (k >= 750) & (k < 1250)
    r = voice_activity.roles(_speech(own), _speech(other), T)
    assert (r[1:500] == 0).all()  # the gaps are bridged
    assert (r[520:740] == 2).all()  # nobody, once the hangover has passed
    assert (r[760:1250] == 1).all()
    assert (r[1270:] == 2).all()


def test_blinks_count_closures_once_and_need_eyelids():
    values = np.zeros((T, RIG.dim), np.float32)
    lids = [RIG.names.index(n) for n in aliveness.BLINK_CHANNELS]
    for start in range(10, T, 100):  # 15 blinks of 5 frames, wavering around the threshold
        values[start:start + 5, lids] = [[0.9], [0.45], [0.8], [0.6], [0.3]]
    onsets = aliveness.blink_onsets(values, RIG)
    assert onsets is not None and len(onsets) == 15
    assert aliveness.blink_onsets(np.zeros((T, 56)), get_rig("flame56")) is None


def test_summary_and_compare_per_role():
    names = list(RIG.names)
    gt = np.zeros((T, RIG.dim), np.float32)
    model = np.zeros_like(gt)
    t = np.arange(T) / 25.0
    gt[:, names.index("headYaw")] = np.radians(2.0) * np.sqrt(2) * np.sin(2 * np.pi * 0.3 * t)
    model[:, names.index("headYaw")] = 0.1 * gt[:, names.index("headYaw")]  # nearly still
    lids = [names.index(n) for n in aliveness.BLINK_CHANNELS]
    gt[::75, lids] = 1.0  # 20 blinks a minute
    model[::75, lids] = 1.0
    roles = np.zeros(T, np.int64)  # all speaking
    stats = {k: aliveness.AlivenessStats(RIG) for k in ("model", "gt")}
    stats["gt"].add(gt, roles)
    stats["model"].add(model, roles)
    s_gt, s_model = stats["gt"].summary(), stats["model"].summary()
    assert s_gt["speaking"]["minutes"] == pytest.approx(1.0)
    assert s_gt["speaking"]["blinks_per_min"] == pytest.approx(20.0)
    assert s_gt["speaking"]["head_std_deg"]["yaw"] == pytest.approx(2.0, rel=0.02)
    assert s_gt["listening"]["blinks_per_min"] is None  # no minute of it
    cmp = aliveness.compare(s_model, s_gt)["speaking"]
    assert cmp["blinks_per_min"] == {"ratio": pytest.approx(1.0), "within": True}
    assert cmp["head_std_yaw"]["ratio"] == pytest.approx(0.1, rel=0.02)
    assert not cmp["head_std_yaw"]["within"]
    assert cmp["head_std_pitch"]["ratio"] is None  # 0 / 0: undefined, not in range


class _Echo:
    """A stand-in predictor whose face is the partner's loudness (a listener that hears), or
    nothing at all (a deaf one): the voice effect must tell them apart."""

    def __init__(self, hears: bool) -> None:
        self.hears = hears

    def predict(self, own, other, motion, waveform_stats=None):
        n = len(motion)
        loud = np.sqrt(np.mean(other[: n * SAMPLES_PER_FRAME].reshape(n, -1) ** 2, axis=1))
        out = np.zeros((n, RIG.dim), np.float32)
        if self.hears:
            out[:, RIG.names.index("mouthSmileLeft")] = loud * 5
        return out


def test_the_voice_effect_tells_a_listener_from_a_deaf_model():
    from dualtalk_core.evaluation import listening

    k = np.arange(T)
    own_active, other_active = k < 600, k >= 700
    own, other = _speech(own_active), _speech(other_active)
    roles = voice_activity.roles(own, other, T)
    heard = [listening.voice_effect(_Echo(True), own, other * s, T, RIG, roles)
             for s in (0.5, 1.0, 1.5)]
    deaf = [listening.voice_effect(_Echo(False), own, other * s, T, RIG, roles)
            for s in (0.5, 1.0, 1.5)]
    assert listening.summarize(heard)["clear"] and min(heard) > 1e-3
    assert not listening.summarize(deaf)["clear"] and max(deaf) == 0.0
    no_listening = voice_activity.roles(own, np.zeros_like(other), T)
    assert listening.voice_effect(_Echo(True), own, other, T, RIG, no_listening) is None
    assert listening.summarize([]) == {"n": 0, "mean": None, "ci": None, "clear": False,
                                       "min_effect": listening.MIN_EFFECT}
