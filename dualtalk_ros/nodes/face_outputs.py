"""What the DualTalk node publishes for each face frame: the rig's coefficients, the head pose,
and for a robot's tools the same frame as joint states, a TF transform and a marker.

All outputs are reliable (a recorder or a motor controller must see every frame) and take
`qos_overrides.<topic>.publisher.*` parameters, so an integrator can match a controller's QoS
without code. The joint states come from `dualtalk_core.retargeting` (a YAML map with limits);
TF goes out only where `tf2_msgs` is installed (a full ROS 2 install has it; the PyPI wheels do
not), so the node itself never depends on tf2.
"""
from __future__ import annotations

from typing import Any, Sequence

from geometry_msgs.msg import PoseStamped, TransformStamped
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from dualtalk_core.retargeting import Retargeter
from dualtalk_core.streaming import Frame
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.bridge import messages
from dualtalk_ros.bridge.node_settings import RobotOutputSettings
from dualtalk_ros.nodes.qos import RELIABLE, own

try:  # optional: the PyPI wheels have no tf2_msgs
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - depends on the ROS install
    TFMessage = None

MARKER_LENGTH_M = 0.15  # the gaze arrow: long enough to see head motion of a degree in RViz
MARKER_WIDTH_M = 0.02


class FaceOutputs:
    """The node's publishers and the per-frame messages; `retarget` (the pipeline's, None
    without joints) turns frames into joint states."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.retarget: Retargeter | None = None
        qos = QoSOverridingOptions.with_default_policies()
        self._publishers = [
            node.create_publisher(FaceCoefficients, "face", own(RELIABLE),
                                  qos_overriding_options=qos),
            node.create_publisher(PoseStamped, "head_pose", own(RELIABLE),
                                  qos_overriding_options=qos),
            node.create_publisher(JointState, "joint_states", own(RELIABLE),
                                  qos_overriding_options=qos),
            node.create_publisher(Marker, "face_marker", own(RELIABLE),
                                  qos_overriding_options=qos)]
        self.face_pub, self.pose_pub, self.joint_pub, self.marker_pub = self._publishers
        self.tf_pub = None
        if TFMessage is not None:
            self.tf_pub = node.create_publisher(TFMessage, "/tf", own(RELIABLE),
                                                qos_overriding_options=qos)
            self._publishers.append(self.tf_pub)

    def reset(self) -> None:
        """A new stream: joints start again from the first frame, with no velocity history."""
        if self.retarget is not None:
            self.retarget.reset()

    def publish(self, frames: Sequence[Frame], rig: Any, frame_id: str,
                robot: RobotOutputSettings) -> None:
        names = list(rig.names)
        for frame in frames:
            header = Header(frame_id=frame_id)
            header.stamp.sec, header.stamp.nanosec = messages.s_to_sec_nanosec(frame.t)
            face = FaceCoefficients(header=header, rig=rig.name, names=names,
                                    values=frame.values.astype(float).tolist())
            pose = PoseStamped(header=header)
            o = pose.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in frame.head_quaternion)
            self.face_pub.publish(face)
            self.pose_pub.publish(pose)
            if self.retarget is not None:
                self.joint_pub.publish(self._joints(frame, header))
            if robot.marker:
                self.marker_pub.publish(self._marker(pose, robot.tf_parent_frame or frame_id))
            if self.tf_pub is not None and robot.tf_parent_frame:
                self.tf_pub.publish(TFMessage(transforms=[
                    _transform(pose, robot.tf_parent_frame, frame_id)]))

    def _joints(self, frame: Frame, header: Header) -> JointState:
        assert self.retarget is not None
        command = self.retarget.step(frame.t, frame.values, frame.head_quaternion)
        return JointState(header=Header(stamp=header.stamp), name=list(command.names),
                          position=[float(v) for v in command.positions_rad],
                          velocity=[float(v) for v in command.velocities_rad_s])

    @staticmethod
    def _marker(pose: PoseStamped, parent: str) -> Marker:
        """An arrow along the head's forward (+x, REP-103) axis, in the parent frame."""
        marker = Marker(header=Header(stamp=pose.header.stamp, frame_id=parent),
                        ns="dualtalk_head", id=0, type=Marker.ARROW, action=Marker.ADD)
        marker.pose.orientation = pose.pose.orientation
        marker.scale.x, marker.scale.y, marker.scale.z = (MARKER_LENGTH_M, MARKER_WIDTH_M,
                                                          MARKER_WIDTH_M)
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = 0.2, 0.6, 1.0, 1.0
        return marker

    def stats(self) -> dict[str, Any]:
        """The retargeter's counters of the current stream, as `joints.*` diagnostics values."""
        if self.retarget is None:
            return {}
        return {f"joints.{k}": v for k, v in self.retarget.stats().items()}

    def destroy(self) -> None:
        for publisher in self._publishers:
            self.node.destroy_publisher(publisher)
        self._publishers = []


def _transform(pose: PoseStamped, parent: str, child: str) -> Any:
    t = TransformStamped()
    t.header.stamp = pose.header.stamp
    t.header.frame_id, t.child_frame_id = parent, child
    t.transform.rotation = pose.pose.orientation
    return t
