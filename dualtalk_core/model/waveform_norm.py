"""What the wav2vec2 front end's input must look like: the published release's preprocessing.

The release passes every wav file through the wav2vec2 processor of
`facebook/wav2vec2-large-960h-lv60-self` with `do_normalize`: `(x - mean(x)) / sqrt(var(x) +
1e-7)` over the whole file, in training (before windows are cut) and at test, for both
speakers. Feeding raw [-1, 1] audio to its weights shifts every feature downstream. It also
takes the frame count from the own speaker's audio in floating point (`release_num_frames`).

A stream has no whole file: `RunningWaveformStats` keeps the statistics of everything heard so
far, with a floor on the deviation so that a stream that starts in silence is not amplified to
unit variance (docs/DESIGN.md measures how far this is from whole-clip normalisation).
The log-mel front end (lite) takes raw audio: none of this applies to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ

EPS = 1e-7  # the processor's variance epsilon
# Deviation floor of the streaming statistics: -40 dBFS. Speech sits well above it (the
# corpus' voices: RMS ~0.05-0.1); room noise and silence at the start of a stream stay quiet
# instead of being scaled up to unit variance.
STREAM_STD_FLOOR = 0.01


@dataclass(frozen=True)
class WaveformStats:
    """Mean and deviation (`sqrt(var + EPS)`) of one speaker's audio."""

    mean: float
    std: float

    def apply(self, audio: np.ndarray) -> np.ndarray:
        """(N,) -> (N,) float32 `(x - mean) / std`."""
        x = np.asarray(audio, dtype=np.float32)
        return ((x - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)


def whole_clip_stats(audio: np.ndarray) -> WaveformStats:
    """The release's statistics of a whole file, computed as its processor does (float32)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected (N,) audio with N >= 1, got shape {x.shape}")
    return WaveformStats(float(x.mean()), float(np.sqrt(x.var() + EPS)))


def release_num_frames(num_samples: int) -> int:
    """The release's frame count: `ceil(N / 16000 * 25)` in floating point.

    It exceeds `ceil(N / 640)` by one for some exact multiples of 640 samples (N = 640 * 7:
    4480 / 16000 * 25 = 7.000000000000001 -> 8), which whole-clip inference of the published
    network reproduces.
    """
    return math.ceil(num_samples / SAMPLE_RATE_HZ * FRAME_RATE_HZ)


class RunningWaveformStats:
    """Statistics of all samples seen so far (float64 sums), for streaming normalisation."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._sum = 0.0
        self._sum_sq = 0.0

    def update(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float64)
        self.count += x.size
        self._sum += float(x.sum())
        self._sum_sq += float(np.dot(x, x))

    def current(self, std_floor: float = STREAM_STD_FLOOR) -> WaveformStats:
        """Mean and deviation so far; the deviation never below `std_floor`."""
        if self.count == 0:
            return WaveformStats(0.0, std_floor)
        mean = self._sum / self.count
        var = max(self._sum_sq / self.count - mean * mean, 0.0)
        return WaveformStats(mean, max(math.sqrt(var + EPS), std_floor))
