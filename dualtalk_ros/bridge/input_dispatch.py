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

# What arrives: our AudioChunk and FaceCoefficients, audio_common_msgs audio ("_raw") and the
# AudioInfo describing it ("_info").
INPUT_KINDS = ("self_audio", "partner_audio", "partner_face")
RAW_KINDS = ("self_audio_raw", "partner_audio_raw")
INFO_KINDS = ("self_audio_info", "partner_audio_info")
RAW_CODINGS = ("", "wave", "pcm", "raw")  # AudioInfo.coding_format of uncompressed samples


class InputDispatcher:
    """Messages of any input kind -> the engine's push methods (ValueError for bad input)."""

    def __init__(self, engine: StreamingEngine, max_clock_skew_s: Callable[[], float],
                 audio_common: AudioCommonSettings | None = None) -> None:
        """`max_clock_skew_s` is read at every message: a node may change it while running."""
        self.engine = engine
        self.max_clock_skew_s = max_clock_skew_s
        # per voice: the format its AudioInfo announced, else the parameters' (audio_common)
        default = audio_common or AudioCommonSettings()
        self.formats = {kind: default for kind in RAW_KINDS}

    def push(self, kind: str, msg: Any, now_s: float, arrival_s: float) -> tuple[str, float]:
        """Push one message received at `arrival_s`, `now_s` being the processing time.

        Returns (input kind without the "_raw" suffix, the message's time) for bookkeeping;
        an AudioInfo sets the format of its voice's later AudioData.
        Raises ValueError saying what is wrong with a malformed or mis-stamped message.
        """
        if kind in INFO_KINDS:
            raw_kind = kind.replace("_info", "_raw")
            self.formats[raw_kind] = audio_info_format(msg)
            return kind, now_s
        if kind == "partner_face":
            values, names, t = messages.face(msg)
            self._check_stamp(t, now_s)
            self.engine.push_partner_face(values, names, t)
            return kind, t
        if kind in RAW_KINDS:
            samples, rate, t = self._raw_audio(msg, self.formats[kind], arrival_s)
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

    def _raw_audio(self, msg: Any, fmt: AudioCommonSettings,
                   arrival_s: float) -> tuple[Any, int, float]:
        """audio_common AudioData(Stamped) -> samples; unstamped data ends at its arrival."""
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


def audio_info_format(msg: Any) -> AudioCommonSettings:
    """audio_common_msgs/AudioInfo -> the format of that voice's AudioData (ValueError when it
    announces something this node cannot decode: compressed audio, an unknown sample format, a
    rate or channel count out of range)."""
    coding = str(msg.coding_format).strip().lower()
    if coding not in RAW_CODINGS:
        raise ValueError(f"AudioInfo coding_format {msg.coding_format!r}: only uncompressed "
                         "audio (wave) is decoded")
    try:
        return AudioCommonSettings(enabled=True, sample_rate=int(msg.sample_rate),
                                   channels=int(msg.channels),
                                   encoding=str(msg.sample_format).strip().upper())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"AudioInfo: {exc}") from None
