"""Resampling to 16 kHz: the streaming resampler equals the whole-clip one."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.audio.resampling import StreamResampler, resample_to_16k


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_streaming_resampler_equals_whole_clip(rate):
    rng = np.random.default_rng(rate)
    x = (0.3 * rng.standard_normal(rate + 77)).astype(np.float32)
    whole = resample_to_16k(x, rate)
    assert len(whole) == -(-len(x) * 16000 // rate)
    res, parts, i = StreamResampler(rate), [], 0
    while i < len(x):
        n = int(rng.integers(1, 2500))  # odd sizes, some single samples
        parts.append(res.process(x[i:i + n]))
        i += n
    parts.append(res.flush())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6, rtol=0)
    assert StreamResampler(rate).delay_s < 0.002


def test_resampled_tone_keeps_frequency():
    t = np.arange(44100) / 44100
    y = resample_to_16k(np.sin(2 * np.pi * 440 * t).astype(np.float32), 44100)
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak_hz - 440) < 2
