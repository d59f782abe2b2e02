"""avatar_renderer in its own process: faces in over DDS, images out that follow the face."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from dualtalk_core.rigs import get_rig
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.avatar_renderer import pose_to_head_channels


def test_head_pose_round_trips_through_the_quaternion():
    rig = get_rig("arkit52")
    values = rig.neutral_array()
    values[-3:] = [0.2, -0.3, 0.1]
    np.testing.assert_allclose(pose_to_head_channels(rig.head_quaternion(values)),
                               [0.2, -0.3, 0.1], atol=1e-6)


def test_renderer_node_publishes_images_that_follow_the_face(ros_domain, ros_env):
    proc = subprocess.Popen([sys.executable, "-m", "dualtalk_ros.avatar_renderer", "--ros-args",
                             "-p", "width:=160", "-p", "height:=160"], env=ros_env)
    images: list[Image] = []
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        node = rclpy.create_node("viewer", context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        face_pub = node.create_publisher(FaceCoefficients, "face", reliable)
        node.create_publisher(PoseStamped, "head_pose", reliable)
        node.create_subscription(Image, "image", images.append, qos_profile_sensor_data)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        def spin_until(count: int, timeout_s: float = 30.0) -> None:
            deadline = time.monotonic() + timeout_s
            while len(images) < count and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.02)

        spin_until(5)
        assert len(images) >= 5, "no images from avatar_renderer"
        neutral = np.frombuffer(bytes(images[-1].data), np.uint8).reshape(160, 160, 3)
        msg = FaceCoefficients(rig="arkit52", names=["jawOpen"], values=[1.0])
        deadline = time.monotonic() + 10
        changed = None
        while time.monotonic() < deadline and changed is None:
            face_pub.publish(msg)
            n = len(images)
            spin_until(n + 3, 5.0)
            last = np.frombuffer(bytes(images[-1].data), np.uint8).reshape(160, 160, 3)
            if np.abs(last.astype(int) - neutral).sum() > 0:
                changed = last
        assert changed is not None, "jawOpen=1 did not change the image"
        assert images[-1].encoding == "rgb8" and images[-1].step == 160 * 3
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        rclpy.shutdown(context=context)
