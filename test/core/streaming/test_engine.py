"""Streaming engine: equals offline, causal, smoothing and cross-fade, the shipped model (live
input, gaps and memory: test_engine_live.py).

Tolerance: streaming frames equal `model.predict` on the whole clip to 1e-5 absolute (measured
about 1e-6: the same causal network evaluated on windows of other lengths, float32 rounding).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from dualtalk_core.audio.resampling import resample_to_16k
from dualtalk_core.model import DualTalkModel
from dualtalk_core.rigs import get_rig
from dualtalk_core.streaming import DEFAULT_MODEL_DIR, StreamConfig, StreamingEngine, process_clip
from engine_models import RAW, SMALL, raw_config, tiny_model  # test/core helper

TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def lite() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu").eval()


@pytest.fixture(scope="module")
def tiny() -> DualTalkModel:
    return tiny_model()


@pytest.fixture(scope="module")
def noncausal() -> DualTalkModel:
    # The official network's property (no lookahead bound) at lite cost.
    torch.manual_seed(2)
    return DualTalkModel.from_preset("lite", lookahead_frames=None, **SMALL).eval()


def _clip(seconds: float, rate: int = 16000, seed: int = 0, channels: int = 55):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    own, other = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
    frames = math.ceil(math.ceil(n * 16000 / rate) / 640)
    return own, other, (0.1 * rng.standard_normal((frames, channels))).astype(np.float32)


# ----------------------------------------------------------------- streaming == offline
def test_lite_streaming_equals_offline(lite):
    own, other, motion = _clip(6.1)
    offline = lite.predict(own, other, motion)
    engine = StreamingEngine(lite, raw_config(window_ms=8000))
    out = process_clip(engine, own, other, motion, chunk_ms=37)  # odd 592-sample chunks
    assert out.shape == offline.shape == (153, 55)
    np.testing.assert_allclose(out, offline, atol=TOL, rtol=0)
    assert engine.exact and engine.lookahead_ms == lite.lookahead_ms == 200
    assert engine.stats.partner_face.held_frames == 0


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_and_chunking_equals_offline(tiny, rate):
    own, other, motion = _clip(2.03, rate, seed=rate)
    offline = tiny.predict(resample_to_16k(own, rate), resample_to_16k(other, rate), motion)
    engine = StreamingEngine(tiny, raw_config(window_ms=4000))
    out = process_clip(engine, own, other, motion, sample_rate=rate, chunk_ms=23.3)
    np.testing.assert_allclose(out, offline, atol=TOL, rtol=0)
    stats = engine.stats.self_audio
    assert stats.resampled_chunks == stats.chunks > 80 and stats.gaps_filled == 0


def test_noncausal_window_covering_clip_equals_offline(noncausal):
    own, other, motion = _clip(1.6)
    cfg = raw_config(window_ms=6000, lookahead_ms=2000, hop_ms=40)  # every frame sees it all
    out = process_clip(noncausal, own, other, motion, config=cfg)
    np.testing.assert_allclose(out, noncausal.predict(own, other, motion), atol=TOL, rtol=0)


# ----------------------------------------------------------------- causality
def _perturb_after(clip, t_s: float):
    own, other, motion = (a.copy() for a in clip)
    n = round(t_s * 16000)
    rng = np.random.default_rng(9)
    own[n:] = rng.uniform(-1, 1, len(own) - n)
    other[n:] = rng.uniform(-1, 1, len(other) - n)
    motion[math.ceil(t_s * 25):] += 1.0
    return own, other, motion


@pytest.mark.parametrize("mode", ["exact", "enforced-lite", "enforced-noncausal"])
def test_changing_input_after_t_plus_lookahead_keeps_frame_t(mode, tiny, noncausal):
    model = noncausal if mode == "enforced-noncausal" else tiny
    lookahead = {"exact": None, "enforced-lite": 120.0, "enforced-noncausal": 200.0}[mode]
    cfg = raw_config(window_ms=2000, hop_ms=120, lookahead_ms=lookahead)
    clip = _clip(4.0, seed=5)
    base = process_clip(model, *clip, config=cfg)
    engine = StreamingEngine(model, cfg)
    assert engine.exact == (mode == "exact")
    k = 61
    changed = process_clip(engine, *_perturb_after(clip, k / 25 + engine.lookahead_ms / 1000))
    np.testing.assert_allclose(changed[:k + 1], base[:k + 1], atol=TOL, rtol=0)
    assert np.abs(changed[k + 1:] - base[k + 1:]).max() > 1e-3  # the change does reach later


def test_enforced_lookahead_needs_hop_and_a_bound(noncausal):
    with pytest.raises(ValueError, match="hop_ms <= lookahead_ms"):
        StreamingEngine(noncausal, raw_config(lookahead_ms=80, hop_ms=120))
    with pytest.raises(ValueError, match="set StreamConfig.lookahead_ms"):
        StreamingEngine(noncausal, raw_config())
    with pytest.raises(ValueError, match="window_ms"):
        StreamingEngine(noncausal, raw_config(lookahead_ms=400, window_ms=400))


# ----------------------------------------------------------------- live timing
# ----------------------------------------------------------------- smoothing
def test_smoothing_and_crossfade_change_only_what_they_should(noncausal):
    own, other, motion = _clip(3.0, seed=3)
    cfg = dict(window_ms=1000, lookahead_ms=200, hop_ms=120)
    raw = process_clip(noncausal, own, other, motion, config=raw_config(**cfg))
    faded = process_clip(noncausal, own, other, motion, config=raw_config(crossfade_ms=80, **cfg))
    seams = np.arange(3, 75, 3)  # first frame of each run; 2 frames blended after each
    np.testing.assert_array_equal(faded[seams - 1], raw[seams - 1])
    assert np.abs(faded[seams] - raw[seams]).max(axis=1).min() > 0
    jump = lambda x: np.abs(x[seams] - x[seams - 1]).mean()  # noqa: E731
    assert jump(faded) < jump(raw)
    smooth = process_clip(noncausal, own, other, motion,
                          config=StreamConfig(crossfade_ms=0, **cfg))
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean()


# ----------------------------------------------------------------- the shipped model
def _conversation(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two voices taking turns every 1.25 s (role switches), each over a noise floor."""
    rng = np.random.default_rng(seed)
    n = round(seconds * 16000) + 321  # not a whole number of frames
    t = np.arange(n) / 16000
    turn = np.sin(2 * np.pi * 0.4 * t) > 0
    own = 0.3 * np.sin(2 * np.pi * 170 * t) * turn + 0.01 * rng.standard_normal(n)
    other = 0.3 * np.sin(2 * np.pi * 230 * t) * ~turn + 0.01 * rng.standard_normal(n)
    return own.astype(np.float32), other.astype(np.float32)


def test_shipped_model_streaming_equals_whole_clip_across_role_switches():
    """Frames whose window reaches back to the clip's start equal `predict` on the whole clip:
    all of them when the window covers the clip, the first ones when the clip is longer (the
    later ones see only their window: the LSTM's state reaches back further)."""
    model = DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu")
    own, other = _conversation(5.0)
    motion = (0.1 * np.random.default_rng(1).random((-(-len(own) // 640), 55))).astype(
        np.float32)  # (T, C)
    whole = model.predict(own, other, motion)  # (T, C)
    covering = process_clip(model, own, other, motion, chunk_ms=37,
                            config=raw_config(window_ms=6000, hop_ms=80))
    np.testing.assert_allclose(covering, whole, atol=TOL, rtol=0)
    engine = StreamingEngine(model, raw_config(window_ms=2000, hop_ms=80))
    short = process_clip(engine, own, other, motion, chunk_ms=37)
    reach = (32000 - 16 * round(engine.lookahead_ms)) // 640 + 1  # need(k) <= the window
    assert engine.exact and len(whole) > 2 * reach
    np.testing.assert_allclose(short[:reach], whole[:reach], atol=TOL, rtol=0)


# ----------------------------------------------------------------- live settings, device
def test_reconfigure_applies_live_settings(tiny):
    cfg = StreamConfig(window_ms=2000, hop_ms=80, crossfade_ms=0)
    raw = StreamingEngine(tiny, raw_config(window_ms=2000, hop_ms=80))
    smooth = StreamingEngine(tiny, cfg)
    audio = (0.1 * np.random.default_rng(4).standard_normal((2, 32000))).astype(np.float32)
    for engine in (raw, smooth):
        engine.push_self_audio(audio[0], 16000, 0.0)
        engine.push_partner_audio(audio[1], 16000, 0.0)
    first, reference = smooth.step(now=1.0), raw.step(now=1.0)
    assert max(np.abs(a.values - b.values).max() for a, b in zip(first, reference)) > 1e-4
    smooth.reconfigure(dataclasses.replace(cfg, smoothing=RAW))  # from the next frame on
    later, reference = smooth.step(now=3.0), reference + raw.step(now=3.0)
    assert later and later[0].index == len(first)
    for frame in later:
        np.testing.assert_array_equal(frame.values, reference[frame.index].values)
    waiting = StreamingEngine(tiny, cfg)
    waiting.start(0.0)
    waiting.reconfigure(dataclasses.replace(cfg, input_timeout_ms=10000.0))
    assert waiting.step(now=5.0) == [] and waiting.config.input_timeout_ms == 10000.0
    waiting.reconfigure(cfg)  # at the next step
    assert len(waiting.step(now=5.0)) > 100


@pytest.mark.parametrize("field, value", [
    ("hop_ms", 120.0), ("window_ms", 4000.0), ("lookahead_ms", 120.0), ("crossfade_ms", 0.0),
    ("stamp_tolerance_ms", 5.0), ("max_buffer_s", 10.0)])
def test_reconfigure_rejects_read_only_settings(tiny, field, value):
    cfg = StreamConfig(window_ms=2000)
    engine = StreamingEngine(tiny, cfg)
    changed = dataclasses.replace(cfg, **{field: value})
    with pytest.raises(ValueError, match=f"StreamConfig.{field} is read-only"):
        engine.reconfigure(changed)
    assert engine.config is cfg
    setattr(cfg, field, value)  # an in-place edit of the engine's config is caught too
    with pytest.raises(ValueError, match=f"StreamConfig.{field} is read-only"):
        engine.reconfigure(cfg)
    with pytest.raises(TypeError, match="StreamConfig"):
        engine.reconfigure({"hop_ms": 80.0})  # type: ignore[arg-type]


def test_load_puts_the_model_on_the_device():
    engine = StreamingEngine.load("lite", device="cpu")
    assert engine.model.device.type == "cpu"
    with pytest.raises(ValueError, match="device"):
        StreamingEngine.load("lite", device="tpu")


def test_a_wav2vec2_model_streams_on_the_statistics_heard_so_far():
    """No whole clip in a stream: each window is normalised with the running statistics of
    everything each voice has sent (model.waveform_norm), on the stream's 40 ms grid."""
    from dualtalk_core.streaming.input_tracks import InputTracks
    from dualtalk_core.streaming.model_stepper import WindowedStepper

    torch.manual_seed(0)
    tiny = DualTalkModel.from_preset("official", audio_hidden_dim=32, wav2vec2_layers=1,
                                     wav2vec2_heads=2, wav2vec2_ff_dim=64, feature_dim=16,
                                     ff_dim=32, device="cpu").eval()
    seen: list[np.ndarray] = []
    tiny.joint_encoder.audio_encoder1.feature_extractor.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0][0].numpy().copy()))
    tracks = InputTracks(get_rig("flame56"), 16000 * 10, 10.0)
    rng = np.random.default_rng(0)
    voice = (0.05 + 0.2 * rng.standard_normal(16000 * 3)).astype(np.float32)
    tracks.push_audio(0, voice, 16000, 100.0)
    tracks.push_audio(1, 0.5 * voice, 16000, 100.0)
    stepper = WindowedStepper(tiny, 16000 * 2, 0)
    out = stepper.run(60, 5, 16000 * 3, tracks)  # frames 60..64 from the window [1 s, 3 s)
    assert out.shape == (5, 56)
    expected = tracks.self_audio.heard.current().apply(voice[16000:])
    np.testing.assert_allclose(seen[-1], expected, atol=1e-6)
    assert tracks.self_audio.heard.current().mean == pytest.approx(voice.mean(), abs=1e-6)
