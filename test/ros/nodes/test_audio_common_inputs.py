"""audio_common_msgs inputs (ROS4HRI voices) against a test-only interface package of that name."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diagnostic_msgs.msg import DiagnosticArray
from dualtalk_msgs.msg import FaceCoefficients
from node_processes import running
from ros_harness import ros_node

pytestmark = pytest.mark.ros

FIXTURE = Path(__file__).parents[1] / "helpers" / "fixtures" / "audio_common_msgs"


@pytest.fixture(scope="module")
def audio_common_env(tmp_path_factory) -> dict[str, str]:
    """Build the stand-in package with colcon; return the environment that sees it."""
    work = tmp_path_factory.mktemp("audio_common")
    env = dict(os.environ)
    venv = os.environ.get("VIRTUAL_ENV", sys.prefix)
    # The wheels' ament index lives in the virtualenv prefix; the build must see it.
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [venv]
    env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = os.pathsep.join(prefixes)
    subprocess.run(["colcon", "--log-base", str(work / "log"), "build", "--base-paths",
                    str(FIXTURE), "--build-base", str(work / "build"), "--install-base",
                    str(work / "install"), "--event-handlers", "console_cohesion-"],
                   env=env, check=True, capture_output=True, timeout=300)
    dump = subprocess.run(["bash", "-c", f". {work}/install/local_setup.bash && env -0"],
                          env=env, check=True, capture_output=True, timeout=60).stdout
    return dict(item.split("=", 1) for item in dump.decode().split("\0") if "=" in item)


@pytest.mark.slow  # a colcon build (~10 s) and 4 s of real-time voices: ~20 s
def test_audio_data_inputs_drive_the_node(audio_common_env, ros_domain):
    env = dict(audio_common_env, ROS_DOMAIN_ID=str(ros_domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    node_cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
                "-p", "model:=lite"]
    faces, diags = [], []
    with running(node_cmd, env) as node_proc, ros_node(ros_domain, "listener") as ros:
        ros.node.create_subscription(FaceCoefficients, "face", faces.append, 100)
        ros.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        with running([sys.executable, "-c", PUBLISHER], env) as publisher:  # exits by itself
            ros.until(lambda: publisher.poll() is not None, 60.0)
            assert publisher.poll() == 0, "the voices publisher failed or hung"
        ros.until(lambda: False, 2.0)  # the last frames and a diagnostics message
        assert node_proc.poll() is None
    values = {kv.key: kv.value for kv in diags[-1].status[0].values}
    # Both voices (stamped and unstamped AudioData) reached the engine as audio chunks.
    assert int(values["self_audio.chunks"]) >= 50
    assert int(values["partner_audio.chunks"]) >= 50
    assert values["age_self_audio_s"] != "never" and values["age_partner_audio_s"] != "never"
    assert len(faces) >= 40
    assert np.isfinite(np.array([f.values for f in faces])).all()


PUBLISHER = r"""
import time, numpy as np, rclpy
from rclpy.qos import qos_profile_sensor_data as q
from audio_common_msgs.msg import AudioData, AudioDataStamped
rclpy.init(); n = rclpy.create_node('voices')
own = n.create_publisher(AudioData, 'self_voice', q)
partner = n.create_publisher(AudioDataStamped, 'partner_voice_stamped', q)
deadline = time.monotonic() + 30
while own.get_subscription_count() == 0 or partner.get_subscription_count() == 0:
    if time.monotonic() > deadline:
        raise SystemExit('the node never subscribed')
    time.sleep(0.05)
time.sleep(0.5)
start = time.time()
for i in range(100):  # 3.2 s of 512-sample S16LE chunks
    time.sleep(max(0.0, start + (i + 1) * 0.032 - time.time()))
    pcm = (3000 * np.sin(np.arange(i * 512, (i + 1) * 512) * 0.05)).astype('<i2').tobytes()
    own.publish(AudioData(data=pcm))
    m = AudioDataStamped(); m.audio.data = pcm
    t = start + i * 0.032
    m.header.stamp.sec, m.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
    partner.publish(m)
time.sleep(0.5)
rclpy.shutdown()
"""
