"""Which input messages the node must reject at its boundary (issue 24's input contract).

The fuzzer sends a message and predicts, with `invalid_reason`, whether the node's
`invalid.<kind>` counter must count it; the counter check then holds the node to that. The rules
live in this one function so that a change of the contract is a change here only. Messages are
read by field name (rclpy messages, or anything shaped like them).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dualtalk_core.audio.pcm import ENCODINGS, MAX_RATE_HZ
from dualtalk_core.units import SAMPLE_RATE_HZ
from dualtalk_ros.bridge.node_settings import AudioCommonSettings, InputSettings

MIN_RATE_HZ = 8000
MAX_RATE_TERM = 1000  # rate / 16 kHz must reduce to p/q with p, q <= this (a cheap resampler)
MAX_CHANNELS = 64
MAX_CHUNK_S = 2.0
MAX_ABS_FLOAT_SAMPLE = 4.0  # F32LE full scale is +-1; beyond 4 is not audio
MAX_FACE_NAMES = 1024
MAX_ABS_FACE_VALUE = 10.0
# The node's defaults, from the one place they live: the fuzzer runs the node at its defaults.
MAX_CLOCK_SKEW_S = InputSettings().max_clock_skew_s
RAW_FORMAT = AudioCommonSettings()  # the format audio_common inputs are read in


def invalid_reason(kind: str, msg: Any, now_s: float) -> str | None:
    """Why the node must reject `msg`, received on input `kind` at ROS time `now_s`, or None.

    Audio: a payload that does not decode (encoding, byte count, channels <= 0 or > 64, empty),
    non-finite samples, float samples beyond +-4, a rate outside 8000..768000 Hz or whose ratio
    to 16 kHz does not reduce to terms <= 1000, a chunk longer than 2 s. Faces: name/value count
    mismatch, no names, more than 1024 names, non-finite or |value| > 10. Any stamp <= 0 or
    further than `inputs.max_clock_skew_s` from now (unstamped AudioData is stamped on arrival).
    """
    if kind == "partner_face":
        names, values = list(msg.names), np.asarray(msg.values, dtype=np.float64)
        if len(names) != len(values):
            return "face_count_mismatch"
        if not names:
            return "face_no_names"
        if len(names) > MAX_FACE_NAMES:
            return "face_too_many_names"
        if not np.isfinite(values).all():
            return "face_not_finite"
        if np.abs(values).max() > MAX_ABS_FACE_VALUE:
            return "face_out_of_range"
        return _stamp_reason(msg.header.stamp, now_s)
    if kind.endswith("_raw"):
        fmt = RAW_FORMAT
        data = msg.audio.data if hasattr(msg, "audio") else msg.data
        reason = _audio_reason(bytes(data), fmt.encoding, fmt.channels, fmt.sample_rate)
        stamped = hasattr(msg, "header")
        return reason or (_stamp_reason(msg.header.stamp, now_s) if stamped else None)
    reason = _audio_reason(bytes(msg.data), str(msg.encoding), int(msg.channels),
                           int(msg.sample_rate))
    return reason or _stamp_reason(msg.header.stamp, now_s)


def _audio_reason(data: bytes, encoding: str, channels: int, rate_hz: int) -> str | None:
    if encoding not in ENCODINGS:
        return "audio_unknown_encoding"
    if channels <= 0 or channels > MAX_CHANNELS:
        return "audio_channels"
    if not data:
        return "audio_empty"
    dtype = ENCODINGS[encoding]
    if len(data) % (dtype.itemsize * channels):
        return "audio_byte_count"
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        return "audio_rate_range"
    g = math.gcd(rate_hz, SAMPLE_RATE_HZ)
    if max(rate_hz // g, SAMPLE_RATE_HZ // g) > MAX_RATE_TERM:
        return "audio_rate_ratio"
    if len(data) // (dtype.itemsize * channels) > MAX_CHUNK_S * rate_hz:
        return "audio_too_long"
    if dtype.kind == "f":
        samples = np.frombuffer(data, dtype=dtype)
        if not np.isfinite(samples).all():
            return "audio_not_finite"
        if np.abs(samples).max() > MAX_ABS_FLOAT_SAMPLE:
            return "audio_out_of_range"
    return None


def _stamp_reason(stamp: Any, now_s: float) -> str | None:
    t = stamp.sec + stamp.nanosec * 1e-9
    if t <= 0:
        return "stamp_not_positive"
    if abs(t - now_s) > MAX_CLOCK_SKEW_S:
        return "stamp_skew"
    return None
