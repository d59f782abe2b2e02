"""PCM bytes and sample arrays -> the core's mono float32 at full scale +-1.

Every input path (ROS messages, bag files, WAV files) decodes through these functions, so one
set of checks (encodings, channel counts, byte counts, finiteness, rates) holds everywhere.
"""
from __future__ import annotations

import math

import numpy as np

from dualtalk_core.units import SAMPLE_RATE_HZ, s16_to_float

MIN_RATE_HZ = 8_000  # telephone audio: below it there is no speech to read lips from
MAX_RATE_HZ = 768_000  # the highest rate any common audio interface offers
# The resampler's filter grows with the reduced ratio rate / 16 kHz = down / up (its length is
# ~20 max(up, down) taps): every standard rate reduces to terms <= 441 (44.1 kHz family), while
# an odd rate such as 767999 Hz would need a 15-million-tap filter and seconds to build it.
MAX_RATIO_TERM = 1000
# Float PCM is full scale +-1; a little over it is a hot signal (clipped, counted by the engine),
# far over it is not audio (S16 data labelled F32, a corrupted buffer): refused.
MAX_FLOAT_PEAK = 4.0
ENCODINGS: dict[str, np.dtype] = {"S16LE": np.dtype("<i2"), "F32LE": np.dtype("<f4")}


def decode_pcm(data: bytes | bytearray | memoryview, encoding: str, channels: int) -> np.ndarray:
    """Interleaved little-endian PCM bytes -> (N,) mono float32, full scale +-1.

    Channels are averaged (a stereo microphone becomes one voice). Raises ValueError for an
    unknown encoding, a non-positive channel count, a byte count that is not a whole number of
    multi-channel samples, empty data or non-finite samples.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown PCM encoding {encoding!r}; expected one of {sorted(ENCODINGS)}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"channels must be an integer >= 1, got {channels!r}")
    dtype = ENCODINGS[encoding]
    step = dtype.itemsize * int(channels)
    if len(data) % step:
        raise ValueError(
            f"{len(data)} bytes is not a whole number of {encoding} samples x {channels} "
            f"channel(s) ({step} bytes each); the chunk is truncated or mislabelled"
        )
    samples = np.frombuffer(data, dtype=dtype).reshape(-1, int(channels))  # (N, channels)
    return to_mono_float32(samples)


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    """(N,) or (N, channels) int16 / float array -> (N,) float32 mono, full scale +-1.

    int16 is scaled by 1/32768; floats are taken as already at full scale +-1.
    """
    return checked_mono(samples)[0]


def checked_mono(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """`to_mono_float32` and the chunk's peak |sample|, which its checks compute anyway (the
    engine counts hot chunks by it: one pass over the samples instead of two)."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        samples = s16_to_float(samples)
    elif samples.dtype.kind != "f":
        raise TypeError(f"expected int16 or floating-point samples, got dtype {samples.dtype}")
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[1] < 1):
        raise ValueError(f"expected samples of shape (N,) or (N, channels), got {samples.shape}")
    if samples.shape[0] == 0:
        raise ValueError("empty audio: expected at least one sample")
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    peak = float(np.abs(mono).max())  # NaN or inf if any sample is
    if not math.isfinite(peak):
        bad = int(np.count_nonzero(~np.isfinite(mono)))
        raise ValueError(f"audio has {bad} NaN/inf sample(s); the source is broken upstream")
    if peak > MAX_FLOAT_PEAK:
        raise ValueError(f"audio peak {peak:.3g} is not full-scale +-1 audio (limit "
                         f"{MAX_FLOAT_PEAK}); mislabelled or corrupted samples")
    return mono, peak


def check_rate(sample_rate: float) -> int:
    """A whole number of Hz in [MIN_RATE_HZ, MAX_RATE_HZ] whose ratio to 16 kHz reduces to
    terms <= MAX_RATIO_TERM (every standard rate), as int; ValueError otherwise. The bound keeps
    the resampler's cost fixed whatever rate a message claims."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.number)):
        raise TypeError(f"sample_rate must be a number of Hz, got {type(sample_rate).__name__}")
    if not math.isfinite(sample_rate) or sample_rate <= 0 or sample_rate != int(sample_rate):
        raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate}")
    rate = int(sample_rate)
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise ValueError(f"sample_rate {rate} Hz is outside the supported {MIN_RATE_HZ}.."
                         f"{MAX_RATE_HZ} Hz")
    g = math.gcd(rate, SAMPLE_RATE_HZ)
    if max(rate // g, SAMPLE_RATE_HZ // g) > MAX_RATIO_TERM:
        raise ValueError(f"sample_rate {rate} Hz is not a standard rate (its ratio to "
                         f"{SAMPLE_RATE_HZ} Hz is {rate // g}/{SAMPLE_RATE_HZ // g}); use e.g. "
                         "8000, 11025, 16000, 22050, 32000, 44100 or 48000 Hz")
    return rate
