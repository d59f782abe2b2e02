"""WAV files <-> the core's 16 kHz mono float32, through the same code as live audio.

Reading decodes with `pcm.to_mono_float32` and resamples with `resampling.resample_to_16k`, the
functions the streaming engine's inputs go through, so a model trains on exactly what it hears
live. Writing is 16-bit PCM via `units.float_to_s16`, the inverse of reading.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import wavfile

from dualtalk_core.audio.resampling import resample_to_16k
from dualtalk_core.units import SAMPLE_RATE_HZ, float_to_s16


def read_wav(path: str | Path) -> np.ndarray:
    """Any-rate PCM/float WAV -> (N,) mono float32 at 16 kHz, full scale +-1.

    Integer PCM is scaled by its full scale (uint8 is offset by 128); channels are averaged.
    ValueError names the file when it is unreadable, empty or holds NaN/inf.
    """
    try:
        rate, data = wavfile.read(str(path))
        return resample_to_16k(_full_scale(data), rate)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_wav(path: str | Path, samples: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """(N,) or (N, channels) float samples at full scale +-1 -> a 16-bit PCM WAV file."""
    wavfile.write(str(path), int(rate_hz), float_to_s16(samples))


def _full_scale(data: np.ndarray) -> np.ndarray:
    """int16 stays int16 (the decoder scales it); other integer PCM -> float32 at +-1."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer) and data.dtype != np.int16:
        return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    return data
