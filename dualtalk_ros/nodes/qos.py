"""The QoS profiles of DualTalk topics, chosen once.

Streams (audio, partner face) are best-effort sensor data: a late chunk is worth less than the
next one. Their depth of 50 absorbs a burst delivered while the executor is busy (the default
of 5 loses 32 ms chunks). Outputs are reliable: a consumer recording or rendering the face must
see every frame.
"""
import copy

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR = QoSProfile(depth=50, reliability=qos_profile_sensor_data.reliability,
                    durability=qos_profile_sensor_data.durability,
                    history=qos_profile_sensor_data.history)
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
# A value that late joiners need at once (the pipeline delay): the last one is kept for them.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def own(profile: QoSProfile) -> QoSProfile:
    """A copy for one endpoint: rclpy applies `qos_overrides.<topic>.*` parameters to the
    profile object it is given, so a shared one would carry one topic's override to the rest."""
    return copy.copy(profile)
