"""What a robot drives from the DualTalk node, over DDS at the node's defaults: joint states
within every limit of the packaged retargeting map through a real conversation, the head pose
as TF (against a stand-in tf2_msgs built here: the PyPI wheels have none) and as a marker."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker

from dualtalk_core.retargeting import load_joint_map
from dualtalk_core.rigs import get_rig
from dualtalk_ros.bridge.face_pipeline import joint_map_path
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from node_processes import running
from ros_harness import ros_node
from stand_in_interfaces import build_stand_ins

pytestmark = [pytest.mark.ros, pytest.mark.slow]
HELPERS = Path(__file__).parents[1] / "helpers"
SECONDS = 6.0
SETTINGS = DualTalkNodeSettings()  # the node runs at its defaults
JOINTS = load_joint_map(joint_map_path(SETTINGS.robot.joint_map), get_rig("arkit52").names)
# Limits hold between published commands by construction; float rounding of the stamps only
SLACK = 1e-6


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory) -> dict[str, str]:
    return build_stand_ins(["tf2_msgs"], tmp_path_factory.mktemp("tf2_msgs"))


@pytest.fixture(scope="module")
def conversation(tmp_path_factory) -> Path:
    from dualtalk_core.synth.corpus import build_clip

    clip = build_clip("test", 0, seed=7)
    path = tmp_path_factory.mktemp("conversation") / "clip.npz"
    np.savez(path, audio=clip.audio.astype(np.float32), faces=clip.coeffs.astype(np.float32))
    return path


def _t(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


# Records /tf in a process of its own: the stand-in's libraries are on that process's library
# path only. One JSON line per transform.
TF_LISTENER = r"""
import json, sys, time, rclpy
from tf2_msgs.msg import TFMessage
rclpy.init(); n = rclpy.create_node('tf_listener')
def got(m):
    for tf in m.transforms:
        r = tf.transform.rotation
        print(json.dumps([tf.header.stamp.sec + tf.header.stamp.nanosec * 1e-9,
                          tf.header.frame_id, tf.child_frame_id, r.x, r.y, r.z, r.w,
                          tf.transform.translation.x]), flush=True)
n.create_subscription(TFMessage, '/tf', got, 200)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    rclpy.spin_once(n, timeout_sec=0.05)
rclpy.shutdown()
"""


def test_a_conversation_drives_joints_within_limits_and_tf(tf_env, conversation, ros_domain):
    env = dict(tf_env, ROS_DOMAIN_ID=str(ros_domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    got: dict[str, list] = {"joints": [], "marker": [], "pose": []}
    node_cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node"]
    peer_cmd = [sys.executable, str(HELPERS / "conversation_peer.py"), str(conversation),
                str(SECONDS)]
    with running(node_cmd, env) as node, ros_node(ros_domain, "robot") as ros:
        n = ros.node
        n.create_subscription(JointState, "joint_states", got["joints"].append, 200)
        n.create_subscription(Marker, "face_marker", got["marker"].append, 200)
        n.create_subscription(PoseStamped, "head_pose", got["pose"].append, 200)
        listener = subprocess.Popen([sys.executable, "-c", TF_LISTENER, str(SECONDS + 6.0)],
                                    env=env, stdout=subprocess.PIPE, text=True)
        with running(peer_cmd, env, stdout=subprocess.PIPE, text=True) as peer:
            json.loads(peer.stdout.readline())
            ros.until(lambda: False, SECONDS + 2.0)
            assert peer.wait(timeout=30) == 0
        tf_lines = listener.communicate(timeout=30)[0].splitlines()
        assert listener.returncode == 0
        assert node.poll() is None
    _check_joints(got["joints"])
    poses = {_t(p.header): p.pose.orientation for p in got["pose"]}
    transforms = [json.loads(line) for line in tf_lines]
    assert len(transforms) >= 25 * (SECONDS - 1), f"only {len(transforms)} transforms on /tf"
    matched = 0
    for t, parent, child, x, y, z, w, translation_x in transforms:
        assert (parent, child) == (SETTINGS.robot.tf_parent_frame, SETTINGS.frame_id)
        assert translation_x == 0.0  # rotation only: the parent frame places the head
        q = poses.get(t)
        if q is not None:  # the same frame's head pose
            assert (x, y, z, w) == (q.x, q.y, q.z, q.w)
            matched += 1
    assert matched >= 0.8 * len(transforms)
    marker = got["marker"][-1]
    assert marker.header.frame_id == SETTINGS.robot.tf_parent_frame
    assert marker.type == Marker.ARROW and len(got["marker"]) >= 0.8 * len(got["pose"])


def _check_joints(msgs: list[JointState]) -> None:
    assert len(msgs) >= 25 * (SECONDS - 1), f"only {len(msgs)} joint states"
    assert all(list(m.name) == list(JOINTS.names) for m in msgs)
    t = np.array([_t(m.header) for m in msgs])
    p = np.array([m.position for m in msgs])  # (T, J)
    v = np.array([m.velocity for m in msgs])
    assert np.isfinite(p).all() and np.isfinite(v).all()
    lo = np.array([j.min_rad for j in JOINTS.joints])
    hi = np.array([j.max_rad for j in JOINTS.joints])
    vmax = np.array([j.max_velocity_rad_s for j in JOINTS.joints])
    amax = np.array([j.max_acceleration_rad_s2 for j in JOINTS.joints])
    assert (p >= lo - SLACK).all() and (p <= hi + SLACK).all(), "a position limit broken"
    dt = np.diff(t)[:, None]
    assert (dt > 0).all(), "joint states not in time order"
    # Stamps are float seconds since 1970 on both sides (~2.4e-7 s apart at this epoch): a frame
    # time step of 40 ms is known to ~1e-5 of itself, so a rate at its limit may read that much
    # over it.
    rounding = 1.0 + 1e-4
    assert (np.abs(np.diff(p, axis=0)) / dt <= vmax * rounding).all(), "a velocity limit broken"
    accel = np.abs(np.diff(v, axis=0)) / dt
    worst = np.unravel_index(np.argmax(accel / amax), accel.shape)
    assert (accel <= amax * rounding).all(), (
        f"an acceleration limit broken: joint {JOINTS.names[worst[1]]} at message {worst[0] + 1} "
        f"of {len(msgs)}: {accel[worst]:.4g} > {amax[worst[1]]:g} rad/s^2; positions "
        f"{p[max(0, worst[0] - 2):worst[0] + 3, worst[1]]}, velocities "
        f"{v[max(0, worst[0] - 2):worst[0] + 3, worst[1]]}")
    moving = np.ptp(p, axis=0) > 1e-3
    jaw = list(JOINTS.names).index("jaw")
    assert moving[jaw], "the jaw never moved through a conversation"
    assert moving[:3].any(), "the neck never moved"
