"""Avatar renderer node: FaceCoefficients + PoseStamped in, sensor_msgs/Image out at a fixed rate.

Draws the project's procedural head (dualtalk_core.render.face_renderer, headless EGL on the
CPU). Callbacks only store the latest face and head pose; a timer renders and publishes, so a
slow frame skips a tick instead of queueing. A head pose message, when present, overrides the
face's head channels.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import Image

from dualtalk_core import rigs
from dualtalk_core.render.face_renderer import FaceRenderer
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.bridge import messages
from dualtalk_ros.nodes import node_main
from dualtalk_ros.bridge.node_settings import RendererSettings
from dualtalk_ros.nodes.ros_parameters import NodeSettings


def pose_to_head_channels(q_xyzw: np.ndarray) -> np.ndarray:
    """Quaternion (REP-103 head frame) -> arkit52 (headPitch, headYaw, headRoll) radians."""
    yaw, pitch, roll = Rotation.from_quat(q_xyzw).as_euler("ZYX")
    return np.array([pitch, yaw, roll], np.float32)


class AvatarRenderer(Node):
    def __init__(self) -> None:
        super().__init__("avatar_renderer")
        self.s: RendererSettings = NodeSettings(self, "avatar_renderer").current  # read-only
        self.rig = rigs.get_rig("arkit52")
        self.renderer = FaceRenderer(self.s.width, self.s.height,
                                     style=self.s.style)
        self.lock = threading.Lock()
        self.coeffs = self.rig.neutral_array()
        self.head: np.ndarray | None = None
        self.stamp: Any = None
        self.bad_faces = 0
        self.pub = self.create_publisher(Image, "image", qos_profile_sensor_data)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(FaceCoefficients, "face", self._on_face, reliable)
        self.create_subscription(PoseStamped, "head_pose", self._on_pose, reliable)
        self.create_timer(1.0 / self.s.rate_hz, self._on_tick)

    def _on_face(self, msg: FaceCoefficients) -> None:
        try:
            values, names, _ = messages.face(msg)
            row, _ = rigs.to_rig_order(self.rig.name, names, values)
        except ValueError as exc:
            self.bad_faces += 1
            if self.bad_faces == 1:
                self.get_logger().warning(f"dropping bad face message: {exc} (only counted "
                                          "from now on)")
            return
        with self.lock:
            self.coeffs, self.stamp = row, msg.header.stamp

    def _on_pose(self, msg: PoseStamped) -> None:
        o = msg.pose.orientation
        q = np.array([o.x, o.y, o.z, o.w], np.float64)
        if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-6:
            return
        with self.lock:
            self.head = pose_to_head_channels(q / np.linalg.norm(q))

    def _on_tick(self) -> None:
        with self.lock:
            coeffs = self.coeffs.copy()
            if self.head is not None:
                coeffs[list(self.rig.groups["POSE"])] = self.head
            stamp = self.stamp
        try:
            pixels = self.renderer.render(coeffs)
        except ValueError as exc:  # never stop drawing: log once per kind
            self.get_logger().warning(f"render failed: {exc}", once=True)
            return
        image = Image(height=pixels.shape[0], width=pixels.shape[1], encoding="rgb8",
                      is_bigendian=0, step=pixels.shape[1] * 3)
        image.header.stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        image.header.frame_id = self.s.frame_id
        image.data = pixels.tobytes()
        self.pub.publish(image)

    def close(self) -> None:
        self.renderer.close()


def main(args: list[str] | None = None) -> None:
    node_main.run(AvatarRenderer, args)


if __name__ == "__main__":
    main()
