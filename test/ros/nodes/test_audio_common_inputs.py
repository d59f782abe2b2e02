"""audio_common_msgs inputs (ROS4HRI voices) against a test-only interface package of that name."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from diagnostic_msgs.msg import DiagnosticArray
from dualtalk_msgs.msg import FaceCoefficients
from node_processes import running
from ros_harness import ros_node
from stand_in_interfaces import build_stand_ins

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def audio_common_env(tmp_path_factory) -> dict[str, str]:
    """The stand-in audio_common_msgs package, built with colcon."""
    return build_stand_ins(["audio_common_msgs"], tmp_path_factory.mktemp("audio_common"))


@pytest.mark.slow  # a colcon build (~10 s) and 4 s of real-time voices: ~20 s
def test_audio_data_inputs_drive_the_node(audio_common_env, ros_domain):
    faces, values = _run(audio_common_env, ros_domain, PUBLISHER)
    # Both voices (stamped and unstamped AudioData) reached the engine as audio chunks.
    assert int(values["self_audio.chunks"]) >= 50
    assert int(values["partner_audio.chunks"]) >= 50
    assert values["age_self_audio_s"] != "never" and values["age_partner_audio_s"] != "never"
    assert len(faces) >= 40
    assert np.isfinite(np.array([f.values for f in faces])).all()


def _run(audio_common_env: dict[str, str], ros_domain: int,
         publisher_code: str) -> tuple[list[FaceCoefficients], dict[str, str]]:
    """The node at its defaults (lite model) and a voices publisher; faces and the last
    diagnostics values."""
    env = dict(audio_common_env, ROS_DOMAIN_ID=str(ros_domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    node_cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
                "-p", "model:=lite"]
    faces: list[FaceCoefficients] = []
    diags: list[DiagnosticArray] = []
    with running(node_cmd, env) as node_proc, ros_node(ros_domain, "listener") as ros:
        ros.node.create_subscription(FaceCoefficients, "face", faces.append, 100)
        ros.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        with running([sys.executable, "-c", publisher_code], env) as publisher:
            ros.until(lambda: publisher.poll() is not None, 60.0)  # exits by itself
            assert publisher.poll() == 0, "the voices publisher failed or hung"
        ros.until(lambda: False, 2.0)  # the last frames and a diagnostics message
        assert node_proc.poll() is None
    return faces, {kv.key: kv.value for kv in diags[-1].status[0].values}


@pytest.mark.slow
def test_audio_info_sets_the_format_of_its_voice(audio_common_env, ros_domain):
    """48 kHz stereo F32LE announced by AudioInfo is decoded as such (decoded with the
    parameters' 16 kHz mono S16LE, each 10.7 ms chunk would last 128 ms and overlap the next:
    trimmed); compressed audio announced is refused and counted."""
    faces, values = _run(audio_common_env, ros_domain, INFO_PUBLISHER)
    assert int(values["partner_audio.chunks"]) >= 250, values
    assert int(values["partner_audio.trimmed_chunks"]) == 0, values
    assert int(values["partner_audio.out_of_order_chunks"]) == 0, values
    assert int(values["received.partner_audio_info"]) == 2
    assert int(values["accepted.partner_audio_info"]) == 1
    assert int(values["invalid.partner_audio_info"]) == 1  # the MP3 one
    assert len(faces) >= 40


# The start of every voices publisher: rclpy up, and `wait_for(*publishers)` until the node
# subscribes to each (then half a second more, for its matches to settle).
PUBLISHER_START = r"""
import time, numpy as np, rclpy
from rclpy.qos import qos_profile_sensor_data as q
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
rclpy.init(); n = rclpy.create_node('voices')
def wait_for(*publishers):
    deadline = time.monotonic() + 30
    while any(p.get_subscription_count() == 0 for p in publishers):
        if time.monotonic() > deadline:
            raise SystemExit('the node never subscribed')
        time.sleep(0.05)
    time.sleep(0.5)
"""

INFO_PUBLISHER = PUBLISHER_START + r"""
partner = n.create_publisher(AudioDataStamped, 'partner_voice_stamped', q)
info = n.create_publisher(AudioInfo, 'partner_voice_info', q)
wait_for(partner, info)
info.publish(AudioInfo(channels=1, sample_rate=16000, sample_format='S16LE',
                       coding_format='mp3'))
info.publish(AudioInfo(channels=2, sample_rate=48000, sample_format='F32LE',
                       coding_format='wave'))
time.sleep(0.3)
start = time.time()
for i in range(300):  # 3.2 s of 512-frame stereo F32LE chunks at 48 kHz
    time.sleep(max(0.0, start + (i + 1) * 512 / 48000 - time.time()))
    x = 0.1 * np.sin(np.arange(i * 512, (i + 1) * 512) * 0.02).astype('<f4')
    m = AudioDataStamped(); m.audio.data = np.repeat(x, 2).tobytes()
    t = start + i * 512 / 48000
    m.header.stamp.sec, m.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
    partner.publish(m)
time.sleep(0.5)
rclpy.shutdown()
"""


PUBLISHER = PUBLISHER_START + r"""
own = n.create_publisher(AudioData, 'self_voice', q)
partner = n.create_publisher(AudioDataStamped, 'partner_voice_stamped', q)
wait_for(own, partner)
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
