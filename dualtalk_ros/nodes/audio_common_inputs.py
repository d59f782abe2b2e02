"""Optional inputs in the audio_common_msgs format (the ROS4HRI `/humans/voices/<id>/audio`
convention): `AudioData` (raw bytes, no stamp) and `AudioDataStamped` (header + AudioData).

The bytes carry no format: sample rate, channels and encoding are the parameters
`inputs.audio_common.*`, and `bridge.input_dispatch` decodes them. Subscribed only when
`audio_common_msgs` is importable and `inputs.audio_common.enabled` is true; topics:
`self_voice`, `partner_voice` (AudioData) and `self_voice_stamped`, `partner_voice_stamped`
(AudioDataStamped).
"""
from __future__ import annotations

from typing import Any, Callable

from rclpy.node import Node

from dualtalk_ros.bridge.node_settings import AudioCommonSettings
from dualtalk_ros.nodes.qos import SENSOR


def subscribe_audio_common(node: Node, settings: AudioCommonSettings,
                           store: Callable[[str], Callable[[Any], None]]) -> bool:
    """Subscribe the four audio_common topics; False when disabled or not installed."""
    if not settings.enabled:
        return False
    try:
        from audio_common_msgs.msg import AudioData, AudioDataStamped
    except ImportError:
        node.get_logger().info("audio_common_msgs not installed: AudioData inputs disabled")
        return False
    for who in ("self", "partner"):
        kind = f"{who}_audio_raw"
        node.create_subscription(AudioData, f"{who}_voice", store(kind), SENSOR)
        node.create_subscription(AudioDataStamped, f"{who}_voice_stamped", store(kind), SENSOR)
    return True
