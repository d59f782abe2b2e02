"""avatar_renderer in its own process: faces in over DDS, images out that follow the face."""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from dualtalk_core.rigs import get_rig
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.nodes.avatar_renderer import pose_to_head_channels
from node_processes import running
from ros_harness import ros_node


def test_head_pose_round_trips_through_the_quaternion():
    rig = get_rig("arkit52")
    values = rig.neutral_array()
    values[-3:] = [0.2, -0.3, 0.1]
    np.testing.assert_allclose(pose_to_head_channels(rig.head_quaternion(values)),
                               [0.2, -0.3, 0.1], atol=1e-6)


@pytest.mark.ros
def test_renderer_node_publishes_images_that_follow_the_face(ros_domain, ros_env):
    cmd = [sys.executable, "-m", "dualtalk_ros.nodes.avatar_renderer", "--ros-args",
           "-p", "width:=160", "-p", "height:=160"]
    images: list[Image] = []
    with running(cmd, ros_env) as proc, ros_node(ros_domain, "viewer") as ros:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        face_pub = ros.node.create_publisher(FaceCoefficients, "face", reliable)
        ros.node.create_publisher(PoseStamped, "head_pose", reliable)
        ros.node.create_subscription(Image, "image", images.append, qos_profile_sensor_data)
        assert ros.until(lambda: len(images) >= 5, 30.0), "no images from avatar_renderer"
        neutral = np.frombuffer(bytes(images[-1].data), np.uint8).reshape(160, 160, 3)
        msg = FaceCoefficients(rig="arkit52", names=["jawOpen"], values=[1.0])
        deadline = time.monotonic() + 10
        changed = None
        while time.monotonic() < deadline and changed is None:
            face_pub.publish(msg)
            n = len(images)
            ros.until(lambda: len(images) >= n + 3, 5.0)
            last = np.frombuffer(bytes(images[-1].data), np.uint8).reshape(160, 160, 3)
            if np.abs(last.astype(int) - neutral).sum() > 0:
                changed = last
        assert changed is not None, "jawOpen=1 did not change the image"
        assert images[-1].encoding == "rgb8" and images[-1].step == 160 * 3
        assert proc.poll() is None
