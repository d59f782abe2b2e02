"""ROS message fields <-> dualtalk_core arrays.

Parsing is duck-typed on field names, so the same functions read rclpy messages in the node and
`rosbags` messages in the bag tools. Every parser raises ValueError saying what was wrong.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dualtalk_core.audio import pcm

NS = 1_000_000_000


def stamp_to_s(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_sec_nanosec(t: float) -> tuple[int, int]:
    """Float seconds -> (sec, nanosec) rounded to the nearest nanosecond."""
    total = int(round(t * NS))
    return total // NS, total % NS


def audio_chunk(msg: Any) -> tuple[np.ndarray, int, float]:
    """AudioChunk -> ((N, channels) samples, sample_rate, time of the first sample)."""
    if msg.sample_rate <= 0:
        raise ValueError(f"AudioChunk.sample_rate must be > 0, got {msg.sample_rate}")
    if msg.channels <= 0:
        raise ValueError(f"AudioChunk.channels must be >= 1, got {msg.channels}")
    data = bytes(msg.data)
    if not data:
        raise ValueError("AudioChunk.data is empty")
    samples = pcm.decode_pcm(data, str(msg.encoding), int(msg.channels))
    return samples, int(msg.sample_rate), stamp_to_s(msg.header.stamp)


def raw_audio(data: Any, encoding: str, channels: int) -> np.ndarray:
    """audio_common_msgs/AudioData bytes -> (N, channels) samples (format from parameters)."""
    data = bytes(data)
    if not data:
        raise ValueError("AudioData.data is empty")
    return pcm.decode_pcm(data, encoding, channels)


def face(msg: Any) -> tuple[np.ndarray, list[str], float]:
    """FaceCoefficients -> (values, names, stamp) after checking lengths and finiteness."""
    names = list(msg.names)
    values = np.asarray(msg.values, dtype=np.float32)
    if len(names) != len(values):
        raise ValueError(f"FaceCoefficients has {len(names)} names but {len(values)} values")
    if not names:
        raise ValueError("FaceCoefficients has no channels")
    if not np.isfinite(values).all():
        raise ValueError("FaceCoefficients.values contains NaN or inf")
    return values, names, stamp_to_s(msg.header.stamp)


def stamp_problem(t: float, now: float, max_skew_s: float) -> str | None:
    """Why a stamp is unusable (not finite, or further than `max_skew_s` from now), or None."""
    if not math.isfinite(t) or t <= 0:
        return "stamp_invalid"
    if t > now + max_skew_s:
        return "stamp_future"
    if t < now - max_skew_s:
        return "stamp_past"
    return None
