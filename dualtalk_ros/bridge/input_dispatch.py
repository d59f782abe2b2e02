"""The one path from an input message to the streaming engine, for the node and the replays.

Parse the message, check its stamp against the clock that receives it, push it into the engine.
The live node calls it from its worker thread with ROS time; the offline bag replay calls it
with the bag's log time: both take the same decisions about the same messages.
"""
from __future__ import annotations

from typing import Any, Callable

from dualtalk_core.streaming import StreamingEngine
from dualtalk_ros.bridge import messages
from dualtalk_ros.bridge.node_settings import AudioCommonSettings

# What arrives: our AudioChunk and FaceCoefficients, and audio_common_msgs audio ("_raw").
INPUT_KINDS = ("self_audio", "partner_audio", "partner_face")
RAW_KINDS = ("self_audio_raw", "partner_audio_raw")


class InputDispatcher:
    """Messages of any input kind -> the engine's push methods (ValueError for bad input)."""

    def __init__(self, engine: StreamingEngine, max_clock_skew_s: Callable[[], float],
                 audio_common: AudioCommonSettings | None = None) -> None:
        """`max_clock_skew_s` is read at every message: a node may change it while running."""
        self.engine = engine
        self.max_clock_skew_s = max_clock_skew_s
        self.audio_common = audio_common or AudioCommonSettings()

    def push(self, kind: str, msg: Any, now_s: float, arrival_s: float) -> tuple[str, float]:
        """Push one message received at `arrival_s`, `now_s` being the processing time.

        Returns (input kind without the "_raw" suffix, the message's time) for bookkeeping.
        Raises ValueError saying what is wrong with a malformed or mis-stamped message.
        """
        if kind == "partner_face":
            values, names, t = messages.face(msg)
            self._check_stamp(t, now_s)
            self.engine.push_partner_face(values, names, t)
            return kind, t
        if kind in RAW_KINDS:
            samples, rate, t = self._raw_audio(msg, arrival_s)
            kind = kind.removesuffix("_raw")
        elif kind in INPUT_KINDS:
            samples, rate, t = messages.audio_chunk(msg)
        else:
            raise ValueError(f"unknown input kind {kind!r}")
        self._check_stamp(t, now_s)
        push = (self.engine.push_self_audio if kind == "self_audio"
                else self.engine.push_partner_audio)
        push(samples, rate, t, now_s)
        return kind, t

    def _raw_audio(self, msg: Any, arrival_s: float) -> tuple[Any, int, float]:
        """audio_common AudioData(Stamped) -> samples; unstamped data ends at its arrival."""
        fmt = self.audio_common
        if hasattr(msg, "header"):
            samples = messages.raw_audio(msg.audio.data, fmt.encoding, fmt.channels,
                                         fmt.sample_rate)
            return samples, fmt.sample_rate, messages.stamp_to_s(msg.header.stamp)
        samples = messages.raw_audio(msg.data, fmt.encoding, fmt.channels, fmt.sample_rate)
        return samples, fmt.sample_rate, arrival_s - len(samples) / fmt.sample_rate

    def _check_stamp(self, t: float, now_s: float) -> None:
        skew = self.max_clock_skew_s()
        problem = messages.stamp_problem(t, now_s, skew)
        if problem:
            raise ValueError(f"{problem.replace('_', ' ')}: stamp {t:.3f} s vs now {now_s:.3f} s "
                             f"(inputs.max_clock_skew_s = {skew})")
