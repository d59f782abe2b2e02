"""One-Euro filter: jitter reduced, constants and ramps pass, state and errors explicit."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.streaming.smoothing import OneEuroConfig, OneEuroFilter


def _run(filt: OneEuroFilter, frames: np.ndarray, fps: float = 25.0) -> np.ndarray:
    return np.stack([filt(row, i / fps) for i, row in enumerate(frames)])


def test_reduces_jitter_per_channel():
    rng = np.random.default_rng(0)
    clean = np.tile(np.array([0.2, 0.5, -0.1], np.float32), (250, 1))  # (T, 3)
    noisy = clean + rng.normal(0, 0.02, clean.shape).astype(np.float32)
    out = _run(OneEuroFilter(), noisy)
    jitter_in = np.abs(np.diff(noisy, axis=0)).mean()
    jitter_out = np.abs(np.diff(out, axis=0)).mean()
    assert jitter_out < 0.3 * jitter_in
    assert np.abs(out[50:] - clean[50:]).mean() < np.abs(noisy[50:] - clean[50:]).mean()


def test_constant_passes_unchanged():
    frames = np.full((100, 55), 0.37, np.float32)
    np.testing.assert_allclose(_run(OneEuroFilter(), frames), frames, atol=1e-6)


def test_fast_motion_lags_less_with_beta():
    ramp = np.linspace(0, 4, 50, dtype=np.float32)[:, None]  # 2 units/s
    slow = _run(OneEuroFilter(OneEuroConfig(beta=0.0)), ramp)
    fast = _run(OneEuroFilter(OneEuroConfig(beta=2.0)), ramp)
    assert np.abs(fast[-1] - ramp[-1]) < 0.5 * np.abs(slow[-1] - ramp[-1])


def test_disabled_is_identity_and_reset_restarts():
    frames = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run(OneEuroFilter(OneEuroConfig(enabled=False)), frames),
                                  frames)
    filt = OneEuroFilter()
    first = _run(filt, frames)
    filt.reset()
    np.testing.assert_array_equal(_run(filt, frames), first)


def test_errors():
    with pytest.raises(ValueError, match="min_cutoff_hz"):
        OneEuroConfig(min_cutoff_hz=0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroConfig(beta=-1)
    filt = OneEuroFilter()
    filt(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="increase"):
        filt(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="channels"):
        filt(np.zeros(4), 0.04)
    with pytest.raises(ValueError, match=r"\(C,\)"):
        filt(np.zeros((2, 3)), 0.08)
