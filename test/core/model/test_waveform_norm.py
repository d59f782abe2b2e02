"""The published network sees what it was trained on: whole-file normalised audio, the release's
frame count and float32; the lite network's outputs do not change (it takes raw audio)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor

from dualtalk_core.model import PRESETS, DEFAULT_MODEL_DIR, DualTalkModel
from dualtalk_core.model.waveform_norm import (STREAM_STD_FLOOR, RunningWaveformStats,
                                               WaveformStats, release_num_frames,
                                               whole_clip_stats)
from dualtalk_core.units import SAMPLES_PER_FRAME, num_frames

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data"
TINY_OFFICIAL = dict(audio_hidden_dim=32, wav2vec2_layers=1, wav2vec2_heads=2,
                     wav2vec2_ff_dim=64, feature_dim=16, ff_dim=32, device="cpu")


@pytest.fixture(scope="module")
def tiny_official() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("official", **TINY_OFFICIAL).eval()


def _voice(n: int, seed: int, level: float = 0.2, offset: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (offset + level * np.sin(2 * np.pi * 150 * t) * (rng.random(n) > 0.3)
            + 0.01 * rng.standard_normal(n)).astype(np.float32)


def _capture_encoder_inputs(model: DualTalkModel) -> tuple[list, list]:
    """The waveforms the two wav2vec2 encoders receive, recorded on their CNN's input."""
    own, other = [], []
    model.joint_encoder.audio_encoder1.feature_extractor.register_forward_pre_hook(
        lambda _m, args: own.append(args[0][0].numpy().copy()))
    model.joint_encoder.audio_encoder2.feature_extractor.register_forward_pre_hook(
        lambda _m, args: other.append(args[0][0].numpy().copy()))
    return own, other


def test_whole_clip_normalisation_is_the_release_processors():
    x = _voice(16000 * 3 + 17, 0)
    ours = whole_clip_stats(x).apply(x)
    release = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm([x], None)[0]
    np.testing.assert_array_equal(ours, release)
    hand = (x.astype(np.float64) - x.mean(dtype=np.float64)) / np.sqrt(
        x.var(dtype=np.float64) + 1e-7)
    np.testing.assert_allclose(ours, hand, atol=1e-5)
    assert abs(float(ours.mean())) < 1e-6 and abs(float(ours.std()) - 1) < 1e-4


def test_the_encoders_receive_each_voice_normalised_by_its_own_clip(tiny_official):
    own_in, other_in = _capture_encoder_inputs(tiny_official)
    own, other = _voice(16000 * 2, 1, 0.3, 0.05), _voice(16000 * 2, 2, 0.05, -0.02)
    motion = np.zeros((num_frames(len(own)), 56), np.float32)
    tiny_official.predict(own, other, motion)
    for got, x in ((own_in[-1], own), (other_in[-1], other)):  # hand-computed, float64
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(got, (x64 - x64.mean()) / np.sqrt(x64.var() + 1e-7),
                                   atol=1e-5)
    # Given statistics (e.g. the whole file's, for a cut of it) replace the clip's own.
    given = WaveformStats(0.1, 0.5)
    tiny_official.predict(own, other, motion, waveform_stats=(given, None))
    np.testing.assert_allclose(own_in[-1], (own - 0.1) / 0.5, atol=1e-6)
    np.testing.assert_allclose(other_in[-1], whole_clip_stats(other).apply(other), atol=0)


def test_the_frame_count_follows_the_release_where_it_differs(tiny_official):
    n = SAMPLES_PER_FRAME * 7  # 4480 / 16000 * 25 = 7.000000000000001 in floating point
    assert release_num_frames(n) == 8 and num_frames(n) == 7
    diverging = [k for k in range(1, 400) if release_num_frames(SAMPLES_PER_FRAME * k) != k]
    assert diverging[:5] == [7, 14, 28, 55, 56]
    own, other = _voice(n, 3), _voice(n, 4)
    assert tiny_official.predict(own, other, np.zeros((7, 56), np.float32)).shape == (8, 56)
    # The published network attends over the partner's whole motion, whatever its length.
    assert tiny_official.predict(own, other, np.zeros((5, 56), np.float32)).shape == (8, 56)
    assert tiny_official.predict(own, other, np.zeros((7, 56), np.float32),
                                 n_frames=7).shape == (7, 56)  # training windows, streaming
    lite = DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu")
    assert lite.predict(own, other, np.zeros((7, 55), np.float32)).shape == (7, 55)
    with pytest.raises(ValueError, match="T = 7"):  # a causal model aligns frame by frame
        lite.predict(own, other, np.zeros((5, 55), np.float32))


def _lite_reference_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(23)
    n = 640 * 57 + 311
    t = np.arange(n) / 16000
    own = (0.2 * np.sin(2 * np.pi * 170 * t) * (t < 1.2)
           + 0.01 * rng.standard_normal(n)).astype(np.float32)
    other = (0.2 * np.sin(2 * np.pi * 230 * t) * (t >= 1.2)
             + 0.01 * rng.standard_normal(n)).astype(np.float32)
    motion = (0.1 * rng.random((-(-n // 640), 55))).astype(np.float32)
    return own, other, motion


def test_the_lite_model_takes_raw_audio_and_its_outputs_did_not_change():
    lite = DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu").eval()
    own, other, motion = _lite_reference_inputs()
    out = lite.predict(own, other, motion, waveform_stats=(WaveformStats(0.5, 0.1), None),
                       clip=False)  # the network itself, before the rig range
    with torch.inference_mode():  # the network on the raw audio: nothing in between
        raw = lite(torch.from_numpy(own)[None], torch.from_numpy(other)[None],
                   torch.from_numpy(motion)[None])[0].numpy()
    np.testing.assert_array_equal(out, raw)
    # Recorded with the shipped model (one thread; re-recorded when a new model ships); other
    # CPUs round differently.
    np.testing.assert_allclose(out, np.load(DATA / "lite_reference_output.npy"), atol=1e-5)


def test_running_statistics_reach_the_whole_clips_and_keep_silence_quiet():
    x = _voice(16000 * 4, 5, 0.3, 0.02)
    running = RunningWaveformStats()
    for chunk in np.array_split(x, 37):
        running.update(chunk)
    whole, now = whole_clip_stats(x), running.current()
    assert now.mean == pytest.approx(whole.mean, abs=1e-7)
    assert now.std == pytest.approx(whole.std, rel=1e-5)
    running.reset()
    assert running.current() == WaveformStats(0.0, STREAM_STD_FLOOR)
    running.update(np.full(1600, 1e-4, np.float32))  # room noise only: not scaled up
    assert running.current().std == STREAM_STD_FLOOR


def test_the_published_preset_runs_in_float32_unless_asked():
    assert PRESETS["official"].cuda_autocast == "off"
    assert PRESETS["lite"].cuda_autocast == "off"
