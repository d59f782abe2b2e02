"""Optional inputs in the audio_common_msgs format (the ROS4HRI `/humans/voices/<id>/audio`
convention): `AudioData` (raw bytes, no stamp) and `AudioDataStamped` (header + AudioData).

The bytes carry no format, so sample rate, channels and encoding come from the parameters
`inputs.audio_common.*`. Subscribed only when `audio_common_msgs` is importable and
`inputs.audio_common.enabled` is true; topics: `self_voice`, `partner_voice` (AudioData) and
`self_voice_stamped`, `partner_voice_stamped` (AudioDataStamped).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from rclpy.node import Node

from dualtalk_core.audio import pcm
from dualtalk_ros.bridge import messages
from dualtalk_ros.nodes.qos import SENSOR


class AudioCommonInputs:
    def __init__(self, node: Node, p: dict[str, Any],
                 store: Callable[[str], Callable[[Any], None]]) -> None:
        self.rate = int(p["inputs.audio_common.sample_rate"])
        self.channels = int(p["inputs.audio_common.channels"])
        self.encoding = str(p["inputs.audio_common.encoding"])
        self.active = False
        if not p["inputs.audio_common.enabled"]:
            return
        try:
            from audio_common_msgs.msg import AudioData, AudioDataStamped
        except ImportError:
            node.get_logger().info("audio_common_msgs not installed: AudioData inputs disabled")
            return
        if self.rate <= 0 or self.channels <= 0:
            raise ValueError("inputs.audio_common.sample_rate and .channels must be > 0")
        if self.encoding not in pcm.ENCODINGS:
            raise ValueError(f"inputs.audio_common.encoding must be one of "
                             f"{sorted(pcm.ENCODINGS)}, got {self.encoding!r}")
        for who in ("self", "partner"):
            kind = f"{who}_audio_raw"
            node.create_subscription(AudioData, f"{who}_voice", store(kind), SENSOR)
            node.create_subscription(AudioDataStamped, f"{who}_voice_stamped", store(kind),
                                     SENSOR)
        self.active = True

    def decode(self, msg: Any, arrival_s: float) -> tuple[np.ndarray, int, float]:
        """-> (samples, rate, first-sample time); unstamped data is placed just before arrival."""
        if hasattr(msg, "header"):
            samples = messages.raw_audio(msg.audio.data, self.encoding, self.channels)
            return samples, self.rate, messages.stamp_to_s(msg.header.stamp)
        samples = messages.raw_audio(msg.data, self.encoding, self.channels)
        return samples, self.rate, arrival_s - len(samples) / self.rate
