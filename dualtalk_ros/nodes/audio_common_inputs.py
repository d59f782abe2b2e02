"""Optional inputs in the audio_common_msgs format (the ROS4HRI `/humans/voices/<id>/audio`
convention): `AudioData` (raw bytes, no stamp), `AudioDataStamped` (header + AudioData) and the
`AudioInfo` that describes them.

The bytes carry no format of their own. An `AudioInfo` on `<who>_voice_info` sets the sample
rate, channels and sample format of that voice from then on (audio_common's capture node
publishes one); until one arrives the parameters `inputs.audio_common.*` say. Compressed audio
(an MP3 coding_format) is refused and counted. `bridge.input_dispatch` decodes all of it.
Subscribed only when `audio_common_msgs` is importable and `inputs.audio_common.enabled` is
true; topics: `self_voice`, `partner_voice` (AudioData), `self_voice_stamped`,
`partner_voice_stamped` (AudioDataStamped), `self_voice_info`, `partner_voice_info` (AudioInfo,
best effort so that any publisher matches).
"""
from __future__ import annotations

from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions

from dualtalk_ros.bridge.node_settings import AudioCommonSettings
from dualtalk_ros.nodes.qos import SENSOR, own


def subscribe_audio_common(node: Node, settings: AudioCommonSettings,
                           store: Callable[[str], Callable[[Any], None]]) -> list[Any]:
    """The audio_common subscriptions; none when disabled or not installed."""
    if not settings.enabled:
        return []
    try:
        from audio_common_msgs.msg import AudioData, AudioDataStamped
    except ImportError:
        node.get_logger().info("audio_common_msgs not installed: AudioData inputs disabled")
        return []
    qos = QoSOverridingOptions.with_default_policies()
    subs = []
    for who in ("self", "partner"):
        kind = f"{who}_audio_raw"
        subs.append(node.create_subscription(AudioData, f"{who}_voice", store(kind), own(SENSOR),
                                             qos_overriding_options=qos))
        subs.append(node.create_subscription(AudioDataStamped, f"{who}_voice_stamped",
                                             store(kind), own(SENSOR), qos_overriding_options=qos))
    try:
        from audio_common_msgs.msg import AudioInfo
    except ImportError:  # an old audio_common_msgs without it: the parameters say
        return subs
    for who in ("self", "partner"):
        subs.append(node.create_subscription(AudioInfo, f"{who}_voice_info",
                                             store(f"{who}_audio_info"), own(SENSOR),
                                             qos_overriding_options=qos))
    return subs
