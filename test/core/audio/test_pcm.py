"""PCM decoding, whole-clip vs streaming resampling, the audio input timeline."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.audio.pcm import check_rate, decode_pcm, to_mono_float32
from dualtalk_core.audio.resampling import StreamResampler, resample_to_16k
from dualtalk_core.streaming.timelines import AudioTimeline


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


def _timeline() -> AudioTimeline:
    return AudioTimeline(capacity=16000 * 5, tolerance_s=0.01)


def test_timeline_contiguous_jitter_gap_overlap():
    tl = _timeline()
    ones = np.ones(1600, np.float32)  # 0.1 s
    tl.push(ones, 16000, 0.0)
    tl.push(ones, 16000, 0.1003)  # 0.3 ms jitter: contiguous
    assert tl.head == 3200 and tl.stats.gaps_filled == 0
    tl.push(ones, 16000, 0.3)  # 0.1 s gap -> silence
    assert tl.head == 6400 and tl.stats.gaps_filled == 1
    np.testing.assert_array_equal(tl.read(3200, 4800), 0.0)
    tl.push(2 * ones, 16000, 0.35)  # half overlaps: trimmed
    assert tl.head == 7200 and tl.stats.trimmed_chunks == 1
    np.testing.assert_array_equal(tl.read(6400, 7200), 2.0)


def test_timeline_drops_duplicates_out_of_order_late():
    tl = _timeline()
    chunk = np.ones(800, np.float32)
    for t in (0.0, 0.05, 0.1):
        tl.push(chunk, 16000, t)
    tl.push(chunk, 16000, 0.1)  # same stamp again
    tl.push(chunk, 16000, 0.05)  # older than the last accepted one
    assert (tl.stats.duplicate_chunks, tl.stats.out_of_order_chunks) == (1, 1)
    tl.end_segment()
    tl.fill_to(4800)  # the engine gave up waiting up to 0.3 s
    tl.push(chunk, 16000, 0.2)  # arrives after that
    assert tl.stats.late_chunks == 1 and tl.head == 4800
    assert tl.stats.chunks == 3


def test_timeline_resamples_any_rate_seamlessly():
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal(44100)).astype(np.float32)
    tl = AudioTimeline(capacity=32000, tolerance_s=0.01)
    i = 0
    while i < len(x):
        n = int(rng.integers(100, 3000))
        tl.push(x[i:i + n], 44100, i / 44100)
        i += n
    tl.end_segment()
    np.testing.assert_allclose(tl.read(0, tl.head), resample_to_16k(x, 44100), atol=1e-6)
    assert tl.stats.resampled_chunks == tl.stats.chunks and tl.stats.gaps_filled == 0
