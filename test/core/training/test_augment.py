"""Training augmentation: audio seeded, level-controlled, each transform really applied; the
partner dropped exactly as the speaker-only ablation drops it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import welch

from dualtalk_core.training.augment import (AudioAugmentConfig, augment_track, drop_partner,
                                            hide_partner_face)

OFF = dict(tilt_prob=0.0, reverb_prob=0.0, noise_prob=0.0, gain_db=(0.0, 0.0))


def _speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Bursts of a 150 Hz harmonic tone with pauses: loud and silent stretches, like speech."""
    t = np.arange(int(16000 * seconds)) / 16000
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 50))  # to 7.35 kHz
    bursts = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(np.float64)
    rng = np.random.default_rng(seed)
    return (0.1 * tone * bursts + rng.normal(0, 1e-4, len(t))).astype(np.float32)


def _band_ratio(x: np.ndarray) -> float:
    """Power above 3 kHz over power below 1 kHz."""
    f, p = welch(x, 16000, nperseg=1024)
    return float(p[f > 3000].sum() / p[f < 1000].sum())


def test_all_transforms_off_is_identity_and_seeds_repeat() -> None:
    x = _speech_like()
    np.testing.assert_array_equal(
        augment_track(x, np.random.default_rng(0), AudioAugmentConfig(**OFF)), x)
    a = augment_track(x, np.random.default_rng(5))
    b = augment_track(x, np.random.default_rng(5))
    c = augment_track(x, np.random.default_rng(6))
    assert a.dtype == np.float32 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_gain_sets_the_level_and_output_stays_in_range() -> None:
    x = _speech_like()
    cfg = AudioAugmentConfig(**{**OFF, "gain_db": (6.0, 6.0)})
    y = augment_track(x, np.random.default_rng(0), cfg)
    rms = [np.sqrt(np.mean(a.astype(np.float64) ** 2)) for a in (y, x)]
    assert rms[0] / rms[1] == pytest.approx(10 ** (6 / 20), rel=1e-4)
    loud = augment_track(x * 9, np.random.default_rng(0), cfg)
    assert np.abs(loud).max() <= 1.0


def test_tilt_brightens_or_dulls_at_equal_level() -> None:
    x = _speech_like()
    bright = augment_track(x, np.random.default_rng(0),
                           AudioAugmentConfig(**{**OFF, "tilt_prob": 1.0, "tilt": (0.9, 0.9)}))
    dull = augment_track(x, np.random.default_rng(0),
                         AudioAugmentConfig(**{**OFF, "tilt_prob": 1.0, "tilt": (-0.6, -0.6)}))
    assert _band_ratio(bright) > 3 * _band_ratio(x)
    assert _band_ratio(dull) < _band_ratio(x) / 2
    for y in (bright, dull):
        assert np.std(y) == pytest.approx(np.std(x), rel=0.02)


def test_reverb_fills_the_pauses_and_noise_meets_its_snr() -> None:
    x = _speech_like()
    pause = slice(int(16000 * 0.34), int(16000 * 0.45))  # a burst ends at 1/3 s
    wet = augment_track(x, np.random.default_rng(0), AudioAugmentConfig(
        **{**OFF, "reverb_prob": 1.0, "rt60_s": (0.4, 0.4), "reverb_wet": (0.5, 0.5)}))
    assert np.std(wet[pause]) > 20 * np.std(x[pause])
    noisy = augment_track(x, np.random.default_rng(0), AudioAugmentConfig(
        **{**OFF, "noise_prob": 1.0, "snr_db": (20.0, 20.0)}))
    noise = noisy.astype(np.float64) - x
    snr = 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) / np.sqrt(np.mean(noise ** 2)))
    assert snr == pytest.approx(20.0, abs=0.3)


def test_bad_config_says_what_was_expected() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        AudioAugmentConfig(noise_prob=1.5)


def test_drop_partner_feeds_exactly_what_the_speaker_only_ablation_feeds() -> None:
    from dualtalk_core.evaluation.baselines import SpeakerOnly
    from dualtalk_core.model import DualTalkModel
    from dualtalk_core.rigs import get_rig

    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.standard_normal((6, 640 * 20)).astype(np.float32) * 0.1)
    motion = torch.from_numpy(rng.random((6, 20, 55)).astype(np.float32))
    neutral = get_rig("arkit52").neutral_array()
    out_a, out_m = drop_partner(audio, motion, 0.5, np.random.default_rng(4), neutral)
    again = drop_partner(audio, motion, 0.5, np.random.default_rng(4), neutral)
    assert torch.equal(out_a, again[0]) and torch.equal(out_m, again[1])
    dropped = [i for i in range(6) if not torch.equal(out_m[i], motion[i])]
    assert 0 < len(dropped) < 6
    torch.manual_seed(0)
    model = DualTalkModel.from_preset("lite", feature_dim=16, audio_hidden_dim=16, ff_dim=32,
                                      n_mels=16, n_interaction_layers=1, lstm_layers=1,
                                      device="cpu").eval()
    ablation = SpeakerOnly(model, "arkit52")
    kept = model.predict(audio[0].numpy(), audio[0].numpy(), motion[0].numpy())
    assert not np.allclose(kept, ablation.predict(audio[0].numpy(), audio[0].numpy(),
                                                  motion[0].numpy()))  # the partner matters
    for i in range(6):
        if i in dropped:  # a dropped window is the ablation's input, nothing else
            np.testing.assert_array_equal(
                model.predict(audio[i].numpy(), out_a[i].numpy(), out_m[i].numpy()),
                ablation.predict(audio[i].numpy(), audio[i].numpy(), motion[i].numpy()))
        else:
            assert torch.equal(out_a[i], audio[i]) and torch.equal(out_m[i], motion[i])
    none = drop_partner(audio, motion, 0.0, np.random.default_rng(4), neutral)
    assert torch.equal(none[0], audio) and torch.equal(none[1], motion)
    every = drop_partner(audio, motion, 1.0, np.random.default_rng(4), neutral)
    assert torch.count_nonzero(every[0]) == 0 and torch.count_nonzero(every[1]) == 0
    with pytest.raises(ValueError, match="prob"):
        drop_partner(audio, motion, -0.1, np.random.default_rng(0), neutral)


def test_hide_partner_face_keeps_the_voice_and_feeds_what_a_node_without_a_tracker_feeds():
    from dualtalk_core.rigs import get_rig

    rng = np.random.default_rng(1)
    motion = torch.from_numpy(rng.random((8, 20, 55)).astype(np.float32))
    neutral = get_rig("arkit52").neutral_array()
    out = hide_partner_face(motion, 0.5, np.random.default_rng(2), neutral)
    np.testing.assert_array_equal(out, hide_partner_face(motion, 0.5, np.random.default_rng(2),
                                                         neutral))
    hidden = [i for i in range(8) if not torch.equal(out[i], motion[i])]
    assert 0 < len(hidden) < 8
    for i in hidden:  # the still neutral face the node holds when no face arrives
        np.testing.assert_array_equal(out[i].numpy(), np.tile(neutral, (20, 1)))
    assert torch.equal(hide_partner_face(motion, 0.0, np.random.default_rng(2), neutral), motion)
    with pytest.raises(ValueError, match="prob"):
        hide_partner_face(motion, 1.5, np.random.default_rng(0), neutral)
