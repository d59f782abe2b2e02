"""PCM decoding: encodings, channels, byte counts, sample and rate checks."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.audio.pcm import check_rate, decode_pcm, to_mono_float32


def test_decode_s16le_interleaved_stereo_to_mono():
    pcm = np.array([[16384, -16384], [32767, 32767], [-32768, 0]], dtype="<i2")  # (N, 2)
    out = decode_pcm(pcm.tobytes(), "S16LE", 2)
    assert out.dtype == np.float32 and out.shape == (3,)
    np.testing.assert_allclose(out, [0.0, 32767 / 32768, -0.5])


def test_decode_f32le():
    x = np.array([0.25, -1.0, 0.5], dtype="<f4")
    np.testing.assert_array_equal(decode_pcm(x.tobytes(), "F32LE", 1), x)
    np.testing.assert_allclose(decode_pcm(bytearray(x.tobytes()), "F32LE", 3), [-0.25 / 3])


@pytest.mark.parametrize("data, encoding, channels, match", [
    (b"\x00\x01\x02", "S16LE", 1, "whole number"),
    (b"\x00" * 8, "F32LE", 3, "whole number"),
    (b"\x00" * 4, "U8", 1, "unknown PCM encoding"),
    (b"\x00" * 4, "S16LE", 0, "channels"),
    (b"", "S16LE", 1, "empty"),
    (np.array([np.nan], "<f4").tobytes(), "F32LE", 1, "NaN"),
    (np.array([np.inf, 0], "<f4").tobytes(), "F32LE", 1, "NaN/inf"),
])
def test_decode_errors(data, encoding, channels, match):
    with pytest.raises(ValueError, match=match):
        decode_pcm(data, encoding, channels)


def test_samples_and_rate_checks():
    with pytest.raises(TypeError, match="int16 or floating"):
        to_mono_float32(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, channels\)"):
        to_mono_float32(np.zeros((2, 2, 2), np.float32))
    for bad in (0, -16000, 44100.5, float("nan")):
        with pytest.raises(ValueError, match="sample_rate"):
            check_rate(bad)
    assert check_rate(48000.0) == 48000
