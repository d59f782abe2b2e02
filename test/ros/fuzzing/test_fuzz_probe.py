"""The fuzzer's probe, in its own process over real DDS: it counts exactly the bad faces and
head poses it is shown, keeps the node's last /diagnostics values and announces each report."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped

from dualtalk_core.child_processes import stop
from dualtalk_core.rigs import get_rig
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.nodes.qos import RELIABLE


def face(value: float) -> FaceCoefficients:
    """A face of an unknown layout: only |value| <= 10 can be checked."""
    return FaceCoefficients(rig="arkit52", names=["jawOpen", "eyeBlinkLeft"], values=[0.1, value])


def rig_face(blink: float) -> FaceCoefficients:
    """The node's own layout: every channel in its documented range (blendshapes in [0, 1])."""
    rig = get_rig("arkit52")
    values = [0.0] * rig.dim
    values[rig.names.index("eyeBlinkLeft")] = blink
    return FaceCoefficients(rig="arkit52", names=list(rig.names), values=values)


def pose(w: float) -> PoseStamped:
    msg = PoseStamped()
    msg.pose.orientation.w = w
    return msg


def test_probe_counts_bad_output_and_reports(ros_domain: int, ros_env: dict[str, str],
                                             tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    probe = subprocess.Popen([sys.executable, "-m", "dualtalk_ros.fuzzing.fuzz_probe", "--out",
                              str(out)], env=ros_env, stdout=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    node = rclpy.create_node("probe_test", context=context)
    try:
        assert probe.stdout is not None and probe.stdout.readline().strip() == "ready"
        faces = node.create_publisher(FaceCoefficients, "face", RELIABLE)
        poses = node.create_publisher(PoseStamped, "head_pose", RELIABLE)
        diag = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        while min(p.get_subscription_count() for p in (faces, poses, diag)) == 0:
            time.sleep(0.05)
        for value in (0.5, float("nan"), 11.0, -10.0, float("inf")):  # 3 bad
            faces.publish(face(value))
        for blink in (1.0, -0.01, 0.0, 1.2):  # 2 bad: out of the rig's range
            faces.publish(rig_face(blink))
        for w in (1.0, 1.01, 1.0005, float("nan")):  # 2 bad
            poses.publish(pose(w))
        other = DiagnosticStatus(name="some_driver", values=[KeyValue(key="x", value="1")])
        ours = DiagnosticStatus(name="dualtalk_node: dualtalk",
                                values=[KeyValue(key="received.self_audio", value="7")])
        diag.publish(DiagnosticArray(status=[other, ours]))
        assert probe.stdout.readline().startswith("diagnostics ")
        time.sleep(0.5)  # the faces and poses were sent before: they are in by now
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        assert stop(probe, signal.SIGINT) and probe.returncode == 0
    record = json.loads(out.read_text())
    assert (len(record["faces"]), len(record["poses"])) == (9, 4)
    assert (record["bad_faces"], record["bad_poses"]) == (5, 2)
    assert record["last_values"] == {"received.self_audio": "7"}
    assert len(record["diagnostics"]) == 1
