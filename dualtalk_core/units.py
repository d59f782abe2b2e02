"""The core's time and signal units, defined once: every rate, frame size and PCM scale.

Audio inside the core is mono float32 at 16 kHz, full scale +-1; motion is 25 frames a second.
Frame k of a clip covers samples [640 k, 640 (k + 1)), i.e. [k / 25, (k + 1) / 25) s.
"""
from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE_HZ = 16_000
FRAME_RATE_HZ = 25
SAMPLES_PER_FRAME = SAMPLE_RATE_HZ // FRAME_RATE_HZ  # 640
FRAME_MS = 1000.0 / FRAME_RATE_HZ  # 40.0
FRAME_S = 1.0 / FRAME_RATE_HZ  # 0.04
S16_FULL_SCALE = 32768.0  # signed 16-bit PCM: -32768 .. 32767 is -1 .. 1 - 1/32768


def num_frames(num_samples: int) -> int:
    """Motion frames of `num_samples` 16 kHz samples: ceil(N / 640), the last one partial."""
    return math.ceil(num_samples / SAMPLES_PER_FRAME)


def float_to_s16(samples: np.ndarray) -> np.ndarray:
    """Float samples at full scale +-1 -> little-endian int16, rounded, clipped to the range.

    The exact inverse of `s16_to_float` on every int16 value, so audio that goes through a file
    or a message and back is unchanged.
    """
    x = np.clip(np.asarray(samples, dtype=np.float64), -1.0, (S16_FULL_SCALE - 1) / S16_FULL_SCALE)
    return np.round(x * S16_FULL_SCALE).astype("<i2")


def s16_to_float(samples: np.ndarray) -> np.ndarray:
    """int16 samples -> float32 at full scale +-1 (divided by 32768)."""
    return np.asarray(samples, dtype=np.float32) / np.float32(S16_FULL_SCALE)
