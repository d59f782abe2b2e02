"""The audio input timeline: stamps place chunks on the 16 kHz grid; gaps, overlaps, drops."""
from __future__ import annotations

import numpy as np

from dualtalk_core.audio.resampling import resample_to_16k
from dualtalk_core.streaming.timelines import AudioTimeline


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
