"""Every published value stays in its channel's documented range (FaceCoefficients.msg), with
the shipped model and adversarial audio: what the model gets wrong is clipped and counted."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dualtalk_core import rigs
from dualtalk_core.streaming import (DEFAULT_MODEL_DIR, StreamConfig, StreamingEngine,
                                     process_clip)

SECONDS = 6.0
N = int(16000 * SECONDS)


def _adversarial(kind: str, seed: int) -> np.ndarray:
    """Audio a microphone or a buggy TTS can deliver: full-scale noise, a clipped square wave,
    clicks, DC, a chirp sweeping the whole band; all within [-1, 1] (beyond is refused)."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) / 16000
    if kind == "noise":
        return np.clip(rng.standard_normal(N), -1, 1).astype(np.float32)
    if kind == "square":
        return np.sign(np.sin(2 * np.pi * 3.0 * t)).astype(np.float32)
    if kind == "clicks":
        x = np.zeros(N, np.float32)
        x[rng.integers(0, N, 200)] = rng.choice([-1.0, 1.0], 200)
        return x
    if kind == "dc":
        return np.full(N, 0.99, np.float32)
    return np.sin(2 * np.pi * (50 + 3900 * t / SECONDS) * t).astype(np.float32)  # chirp


@pytest.fixture(scope="module")
def engine() -> StreamingEngine:
    torch.set_num_threads(1)
    return StreamingEngine.load(DEFAULT_MODEL_DIR, StreamConfig(), device="cpu")


@pytest.mark.parametrize("kind", ["noise", "square", "clicks", "dc", "chirp"])
def test_adversarial_audio_never_leaves_the_rig_range(engine, kind):
    own, partner = _adversarial(kind, 1), _adversarial(kind, 2)[::-1].copy()
    values = process_clip(engine, own, partner)
    lower, upper = engine.rig.range_arrays()
    assert np.isfinite(values).all()
    assert (values >= lower).all() and (values <= upper).all(), kind


def test_the_shipped_model_is_clipped_and_counted_and_blinks_never_go_negative(engine):
    """Silence, then speech-like noise: the shipped model starts eyeBlink near -0.5 (raw), and
    some brows below 0; the output holds 0 there and the engine counts each clipped value."""
    rng = np.random.default_rng(0)
    own = np.concatenate([np.zeros(N // 2), 0.2 * rng.standard_normal(N // 2)]).astype(
        np.float32)
    values = process_clip(engine, own, np.zeros(N, np.float32))
    names = list(engine.rig.names)
    blinks = values[:, [names.index("eyeBlinkLeft"), names.index("eyeBlinkRight")]]
    assert (blinks >= 0).all() and (values[:, : len(rigs.ARKIT_BLENDSHAPES)] >= 0).all()
    clipped = engine.stats.clipped_values
    assert clipped > 0, "the shipped model was expected to leave the range somewhere"
    assert clipped == engine.stats.as_dict()["clipped_values"]


def test_every_rig_declares_a_range_holding_its_neutral_face():
    for rig in rigs.RIGS.values():
        lower, upper = rig.range_arrays()
        assert lower.shape == upper.shape == (rig.dim,)
        assert (lower < upper).all()
        assert (lower <= rig.neutral_array()).all() and (rig.neutral_array() <= upper).all()
