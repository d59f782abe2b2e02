"""The nodes' Fast DDS profile (`config/dds/fastdds_nodes.xml`): applied before rclpy starts.

rmw_fastrtps keeps each reader history slot's buffer at the largest sample it has held
(PREALLOCATED_WITH_REALLOC). The input topics keep 50 samples, so any publisher's few
oversized messages grew a node by ~20 MiB for good: measured with dualtalk-fuzz, RSS growth
25.9 MiB over 60 s of hostile input, 6.7 MiB with this profile's per-message buffers.
rmw_fastrtps reads a profile's memory policy only with RMW_FASTRTPS_USE_QOS_FROM_XML=1;
the ROS QoS of each endpoint still applies on top, and the profile restates rmw's other
defaults (synchronous publishing, no data sharing).

An integrator's own DDS configuration wins: nothing is changed when a profiles file,
RMW_FASTRTPS_USE_QOS_FROM_XML or RMW_FASTRTPS_PUBLICATION_MODE is already set, or when the
RMW is not Fast DDS. Environment only: rclpy reads it when the node's participant is made.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

from dualtalk_ros.bridge.share_files import share_path

PROFILE = "config/dds/fastdds_nodes.xml"
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
USER_SETTINGS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                 "RMW_FASTRTPS_USE_QOS_FROM_XML", "RMW_FASTRTPS_PUBLICATION_MODE")


def apply_dds_profile(environ: MutableMapping[str, str] | None = None) -> str:
    """Point Fast DDS at the nodes' profile unless the environment configures DDS itself;
    returns what was done, for the node's log."""
    env = os.environ if environ is None else environ
    rmw = env.get("RMW_IMPLEMENTATION", "") or FASTDDS_RMWS[0]  # unset: the default RMW
    if rmw not in FASTDDS_RMWS:
        return f"DDS profile not applied: RMW_IMPLEMENTATION={rmw}"
    own = [name for name in USER_SETTINGS if env.get(name)]
    if own:
        return f"DDS profile not applied: {own[0]} is set (the environment's configuration)"
    try:
        path = share_path("dualtalk_ros", PROFILE)
    except FileNotFoundError as err:
        return f"DDS profile not applied: {err}"
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    env["RMW_FASTRTPS_USE_QOS_FROM_XML"] = "1"
    return f"DDS profile {path}: reader buffers freed after each message"
