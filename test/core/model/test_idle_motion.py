"""Idle motion: seeded, streaming equal to whole-clip, alive in silence, and refused when a file
holds parameters that could not drive a face."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dualtalk_core.audio.voice_activity import LISTENING, SILENCE, SPEAKING
from dualtalk_core.model import DualTalkModel
from dualtalk_core.model import idle_motion as idle
from dualtalk_core.rigs import HEAD_POSE, get_rig
from dualtalk_core.streaming import StreamConfig, StreamingEngine, process_clip
from dualtalk_core.streaming.smoothing import OneEuroConfig

RIG = get_rig("arkit52")
BLINK = [RIG.names.index(n) for n in idle.BLINK_CHANNELS]
HEAD = [RIG.names.index(n) for n in HEAD_POSE]


def _params(**changes) -> idle.IdleMotionParams:
    fields = dict(
        rig="arkit52", blink_channels=idle.BLINK_CHANNELS,
        blink_template=np.array([[0.2, 0.2], [0.8, 0.8], [0.95, 0.95], [0.5, 0.5], [0.1, 0.1]]),
        blink_hazard=np.array([0.02, 0.015, 0.01]), refractory_frames=25,
        head_channels=HEAD_POSE, head_ar=np.array([[1.6, -0.65]] * 3),
        head_innovation=np.array([[0.002] * 3, [0.0015] * 3, [0.001] * 3]))
    fields.update(changes)
    return idle.IdleMotionParams(**fields)


def _still(frames: int) -> np.ndarray:
    return np.tile(RIG.neutral_array().astype(np.float32), (frames, 1))


def test_frame_by_frame_equals_whole_clip_and_reset_repeats_it():
    rng = np.random.default_rng(0)
    values = _still(600) + 0.05 * rng.random((600, RIG.dim)).astype(np.float32)
    roles = rng.integers(0, 3, 600)
    whole = idle.IdleMotion(_params(), seed=7).apply(values, roles)
    stream = idle.IdleMotion(_params(), seed=7)
    cuts = [0, 1, 2, 40, 41, 300, 600]
    pieces = [stream.apply(values[a:b], roles[a:b]) for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    stream.reset()
    np.testing.assert_array_equal(stream.apply(values, roles), whole)
    other = idle.IdleMotion(_params(), seed=8).apply(values, roles)
    assert np.abs(other - whole).max() > 1e-3


def test_thirty_seconds_of_silence_blink_and_sway_at_the_fitted_rates():
    frames = 750
    out = idle.IdleMotion(_params(), seed=1).apply(_still(frames), np.full(frames, SILENCE))
    lids = out[:, BLINK].mean(axis=1)
    onsets = np.flatnonzero((lids[1:] >= 0.5) & (lids[:-1] < 0.5))
    # hazard 0.01 after 25 refractory frames: ~1 blink per 130 frames, ~6 in 30 s
    assert 2 <= len(onsets) <= 12, len(onsets)
    assert np.diff(onsets).min() >= 25
    assert lids.max() <= 1.0 and lids.min() >= 0.0
    head = out[:, HEAD]
    assert (head[375:].std(axis=0) > 1e-3).all()  # still moving in the last 15 s
    assert np.isfinite(out).all()


def test_role_scales_follow_the_fitted_innovations():
    frames = 4000
    p = _params(blink_hazard=np.zeros(3))
    loud = idle.IdleMotion(p, 3).apply(_still(frames), np.full(frames, SPEAKING))[:, HEAD]
    quiet = idle.IdleMotion(p, 3).apply(_still(frames), np.full(frames, LISTENING))[:, HEAD]
    ratio = loud.std(axis=0) / quiet.std(axis=0)
    np.testing.assert_allclose(ratio, 0.002 / 0.0015, rtol=1e-6)  # same draws, scaled


def test_the_network_closing_its_eyes_resets_the_refractory_clock():
    frames = 400
    values = _still(frames)
    values[::30, BLINK] = 1.0  # the network blinks every 1.2 s, inside the 25-frame refractory
    motion = idle.IdleMotion(_params(blink_hazard=np.ones(3), refractory_frames=40), 0)
    motion.apply(values, np.full(frames, SILENCE))
    assert motion.blinks == 0


def test_the_floor_blinks_only_after_a_long_open_gap():
    frames = 600
    p = _params(blink_hazard=np.zeros(3), refractory_frames=10, floor_hazard=np.ones(3),
                floor_after_frames=60)
    still = idle.IdleMotion(p, 0)
    lids = still.apply(_still(frames), np.full(frames, SILENCE))[:, BLINK].mean(axis=1)
    onsets = np.flatnonzero((lids[1:] >= 0.5) & (lids[:-1] < 0.5))
    # certain once open 60 frames, counted from the last closed frame (the template's last):
    # a blink every 60 + 5 - 1 frames
    assert still.blinks == len(onsets) == 9 and set(np.diff(onsets)) == {64}
    values = _still(frames)
    values[::50, BLINK] = 1.0  # the network blinks every 2 s: the gap never reaches 60
    busy = idle.IdleMotion(p, 0)
    busy.apply(values, np.full(frames, SILENCE))
    assert busy.blinks == 0


def test_files_round_trip_and_are_loaded_with_the_model(tmp_path):
    torch.manual_seed(0)
    DualTalkModel.from_preset("lite", device="cpu").save(tmp_path)
    assert DualTalkModel.load(tmp_path).idle_motion is None
    idle.save_idle_motion(_params(), tmp_path)
    loaded = DualTalkModel.load(tmp_path).idle_motion
    assert loaded is not None and loaded.to_json() == _params().to_json()
    gated = _params(floor_hazard=np.array([0.1, 0.2, 0.3]), floor_after_frames=90)
    idle.save_idle_motion(gated, tmp_path)
    assert idle.load_idle_motion(tmp_path).to_json() == gated.to_json()


def test_files_from_before_the_floor_gate_load_without_a_floor(tmp_path):
    data = _params().to_json()
    del data["floor_hazard"], data["floor_after_frames"]
    (tmp_path / idle.IDLE_MOTION_FILE).write_text(json.dumps(data))
    loaded = idle.load_idle_motion(tmp_path)
    assert (loaded.floor_hazard == 0).all() and loaded.floor_after_frames == 0


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(head_ar=[[1.2, 0.5]] * 3), "stationary"),
    (lambda d: d.update(blink_hazard=[0.1, 2.0, 0.1]), "blink_hazard"),
    (lambda d: d.update(blink_template=[[1e30, 0.0]]), "blink_template"),
    (lambda d: d.update(head_innovation=[[float("nan")] * 3] * 3), "finite"),
    (lambda d: d.update(head_channels=["headYaw", "noSuchChannel", "headRoll"]), "not in rig"),
    (lambda d: d.update(rig="x" * 200000), "unknown rig"),
    (lambda d: d.update(refractory_frames=1.5), "integer"),
    (lambda d: d.update(floor_hazard=[0.1, 0.1, -0.5]), "floor_hazard"),
    (lambda d: d.update(floor_hazard=[0.1, 0.1]), "floor_hazard"),
    (lambda d: d.update(floor_after_frames=10 ** 12), "floor_after_frames"),
    (lambda d: d.update(floor_after_frames="90"), "integer"),
    (lambda d: d.update(blink_template=[[0.5] * 2] * 5000), "blink_template"),
    (lambda d: d.pop("head_ar"), "missing field"),
    (lambda d: d.update(format="something/2"), "not an idle-motion file"),
])
def test_absurd_files_are_refused_naming_the_file(tmp_path, edit, words):
    data = _params().to_json()
    edit(data)
    (tmp_path / idle.IDLE_MOTION_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=words) as err:
        idle.load_idle_motion(tmp_path)
    assert str(tmp_path / idle.IDLE_MOTION_FILE) in str(err.value)


def test_a_stream_equals_the_whole_clip_with_its_idle_motion():
    torch.manual_seed(0)
    net = DualTalkModel.from_preset("lite", device="cpu", attention_span_frames=40).eval()
    net.idle_motion = _params()
    frames = 300
    rng = np.random.default_rng(5)
    turn = (np.arange(frames * 640) // 24000) % 3
    own = (0.2 * rng.standard_normal(frames * 640) * (turn == 0)).astype(np.float32)
    other = (0.2 * rng.standard_normal(frames * 640) * (turn == 1)).astype(np.float32)
    config = StreamConfig(hop_ms=40.0, smoothing=OneEuroConfig(enabled=False), crossfade_ms=0.0,
                          idle_seed=11)
    engine = StreamingEngine(net, config)
    streamed = process_clip(engine, own, other, None, chunk_ms=32)
    whole = idle.apply_to_clip(_params(), net.predict(own, other, _still(frames), clip=False),
                               own, other, seed=11)
    np.testing.assert_allclose(streamed, np.clip(whole, *RIG.range_arrays()), atol=1e-5, rtol=0)
    assert engine.stats.idle_blinks > 0
    plain = process_clip(StreamingEngine(net, StreamConfig(
        hop_ms=40.0, smoothing=OneEuroConfig(enabled=False), crossfade_ms=0.0,
        idle_motion=False)), own, other, None, chunk_ms=32)
    assert np.abs(plain[:, HEAD] - streamed[:, HEAD]).max() > 1e-4
