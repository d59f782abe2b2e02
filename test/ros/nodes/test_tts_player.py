"""The robot's own voice in step with its face, over DDS: the example player plays its speech
the pipeline delay after its stamps (publishing it in real time or ahead of them), and every
frame of that speech is shown within 20 ms of its sound."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from dualtalk_core.audio.wav_files import write_wav
from dualtalk_core.synth.espeak import Voice, synthesize
from node_processes import running
from ros_harness import ros_node

pytestmark = pytest.mark.ros
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _ns(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


@pytest.mark.slow  # the node's start-up, then 4 s of speech in real time: 11-14 s each
@pytest.mark.parametrize("ahead_s", [0.0, 1.0], ids=["real_time", "published_ahead"])
def test_the_face_shows_each_moment_of_speech_when_it_is_heard(tmp_path: Path, ros_domain,
                                                               ros_env, ahead_s: float):
    speech = synthesize("Hello there, I can see you. How are you today?", Voice())
    wav = tmp_path / "speech.wav"
    write_wav(wav, speech.audio, speech.sample_rate)
    faces: list[tuple[int, FaceCoefficients]] = []
    chunks: list[tuple[int, AudioChunk]] = []  # (receipt ns, message), as for delays
    starts: list[Time] = []
    delays: list[tuple[int, Duration]] = []
    node_cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node"]
    player_cmd = [sys.executable, "-m", "dualtalk_ros.nodes.tts_player", "--ros-args",
                  "-p", f"wav:={wav}", "-p", "play:=false",
                  "-p", "subscribers:=2",  # the face node and this probe
                  "-p", f"ahead_s:={ahead_s}"]
    seconds = len(speech.audio) / speech.sample_rate
    with running(node_cmd, ros_env), ros_node(ros_domain, "sync_probe") as ros:
        n = ros.node
        n.create_subscription(FaceCoefficients, "face",
                              lambda m: faces.append((time.time_ns(), m)), 200)
        n.create_subscription(AudioChunk, "self_audio",
                              lambda m: chunks.append((time.time_ns(), m)),
                              QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT))
        n.create_subscription(Time, "playback_start", starts.append, LATCHED)
        n.create_subscription(Duration, "pipeline_delay",
                              lambda m: delays.append((time.time_ns(), m)), LATCHED)
        assert ros.until(lambda: delays and faces, 60.0), "the face node did not start"
        with running(player_cmd, ros_env):  # both stop cleanly on SIGTERM: checked on leaving
            assert ros.until(lambda: starts, 30.0), "the player never started playback"
            ros.until(lambda: False, seconds + 1.5)
    speech = [(r, c) for r, c in chunks if c.header.frame_id == "tts"]  # around: "tts_idle"
    first, start = _ns(speech[0][1].header.stamp), _ns(starts[0])
    # the delay in force when the speech began (the node lowers a derived delay slowly later)
    in_force = [d for r, d in delays if r <= speech[0][0]][-1]
    delay = _ns(in_force)
    assert abs(start - first - delay) < 15e6, "playback did not start the delay after speaking"
    span = [(r, m) for r, m in faces
            if first <= _ns(m.header.stamp) < first + int(seconds * 10**9) - 200_000_000]
    assert len(span) >= 25 * (seconds - 0.3), len(span)
    # The moment t of the speech is heard at start + (t - first); its frame arrives at r.
    offsets_ms = np.array([(r - (start + _ns(m.header.stamp) - first)) / 1e6 for r, m in span])
    print(f"\naudio-to-face offset: median {np.median(offsets_ms):.1f} ms, "
          f"p95 |offset| {np.percentile(np.abs(offsets_ms), 95):.1f} ms, pipeline delay "
          f"{delay / 1e6:.0f} ms")
    assert abs(np.median(offsets_ms)) <= 20.0 and np.percentile(np.abs(offsets_ms), 95) <= 20.0
    jaw = np.array([m.values[list(m.names).index("jawOpen")] for _, m in span])
    assert jaw.std() > 0.02, "the face does not speak"
