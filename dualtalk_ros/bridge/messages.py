"""ROS message fields <-> dualtalk_core arrays.

Parsing is duck-typed on field names, so the same functions read rclpy messages in the node and
`rosbags` messages in the bag tools. Every parser raises ValueError saying what was wrong.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dualtalk_core import rigs
from dualtalk_core.audio import pcm

NS = 1_000_000_000
MAX_CHUNK_S = 2.0  # a live chunk is tens of ms; a longer one is a file sent as a message
MAX_CHANNELS = 64  # more than any microphone array delivers in one stream
# A serialized FaceCoefficients of MAX_CHANNELS names of ~30 characters is ~45 KB: a bigger one
# is refused before it is deserialized (200k names take ~50 ms to turn into Python strings, on
# the thread that publishes the face).
MAX_FACE_MESSAGE_BYTES = 64 * 1024
# A serialized AudioChunk bigger than this is refused on arrival, before it is deserialized or
# queued: 2 s of 48 kHz 4-channel float32 is 1.5 MB. Multi-MB payloads queued for the worker
# left the node ~40 MiB bigger (freed on another thread than the one that allocated them).
MAX_AUDIO_MESSAGE_BYTES = 2 * 1024 * 1024


def stamp_to_s(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_sec_nanosec(t: float) -> tuple[int, int]:
    """Float seconds -> (sec, nanosec) rounded to the nearest nanosecond."""
    total = int(round(t * NS))
    return total // NS, total % NS


def audio_chunk(msg: Any) -> tuple[np.ndarray, int, float]:
    """AudioChunk -> ((N,) mono samples, sample_rate, time of the first sample)."""
    rate = pcm.check_rate(msg.sample_rate)
    channels = int(msg.channels)
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"AudioChunk.channels must be 1..{MAX_CHANNELS}, got {channels}")
    encoding = str(msg.encoding)
    if encoding not in pcm.ENCODINGS:
        raise ValueError(f"unknown AudioChunk.encoding {encoding!r}; expected one of "
                         f"{sorted(pcm.ENCODINGS)}")
    n_bytes = len(msg.data)
    if not n_bytes:
        raise ValueError("AudioChunk.data is empty")
    seconds = n_bytes / (pcm.ENCODINGS[encoding].itemsize * channels * rate)
    if seconds > MAX_CHUNK_S:  # checked before decoding: a huge payload costs nothing more
        raise ValueError(f"AudioChunk of {seconds:.1f} s; live chunks are at most "
                         f"{MAX_CHUNK_S:g} s")
    samples = pcm.decode_pcm(bytes(msg.data), encoding, channels)
    return samples, rate, stamp_to_s(msg.header.stamp)


def raw_audio(data: Any, encoding: str, channels: int, rate: int) -> np.ndarray:
    """audio_common_msgs/AudioData bytes -> (N,) mono samples (format from parameters)."""
    if not len(data):
        raise ValueError("AudioData.data is empty")
    seconds = len(data) / (pcm.ENCODINGS[encoding].itemsize * channels * rate)
    if seconds > MAX_CHUNK_S:
        raise ValueError(f"AudioData of {seconds:.1f} s; live chunks are at most "
                         f"{MAX_CHUNK_S:g} s")
    return pcm.decode_pcm(bytes(data), encoding, channels)


def check_face_size(serialized: bytes) -> None:
    """ValueError for a serialized FaceCoefficients too large to be a face."""
    if len(serialized) > MAX_FACE_MESSAGE_BYTES:
        raise ValueError(f"FaceCoefficients of {len(serialized)} bytes; a face of at most "
                         f"{rigs.MAX_CHANNELS} channels fits in {MAX_FACE_MESSAGE_BYTES}")


def check_audio_size(serialized: bytes) -> None:
    """ValueError for a serialized AudioChunk too large to be a live chunk."""
    if len(serialized) > MAX_AUDIO_MESSAGE_BYTES:
        raise ValueError(f"AudioChunk of {len(serialized)} bytes; a chunk of at most "
                         f"{MAX_CHUNK_S:g} s fits in {MAX_AUDIO_MESSAGE_BYTES}")


def face(msg: Any) -> tuple[np.ndarray, list[str], float]:
    """FaceCoefficients -> (values, names, stamp) after checking lengths and finiteness."""
    if len(msg.names) > rigs.MAX_CHANNELS:  # checked first: matching 200k names costs time
        raise ValueError(f"FaceCoefficients has {len(msg.names)} names; at most "
                         f"{rigs.MAX_CHANNELS}")
    names = list(msg.names)
    values = np.asarray(msg.values, dtype=np.float64)
    if len(names) != len(values):
        raise ValueError(f"FaceCoefficients has {len(names)} names but {len(values)} values")
    if not names:
        raise ValueError("FaceCoefficients has no channels")
    if not np.isfinite(values).all():
        raise ValueError("FaceCoefficients.values contains NaN or inf")
    if np.abs(values).max() > rigs.MAX_ABS_VALUE:
        raise ValueError(f"FaceCoefficients.values reach {np.abs(values).max():.3g}; a face "
                         f"value lies within +-{rigs.MAX_ABS_VALUE:g}")
    return values.astype(np.float32), names, stamp_to_s(msg.header.stamp)


def stamp_problem(t: float, now: float, max_skew_s: float) -> str | None:
    """Why a stamp is unusable (not finite, or further than `max_skew_s` from now), or None."""
    if not math.isfinite(t) or t <= 0:
        return "stamp_invalid"
    if t > now + max_skew_s:
        return "stamp_future"
    if t < now - max_skew_s:
        return "stamp_past"
    return None
