"""dualtalk_msgs over real DDS: published by one OS process, received intact by another."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import msg_peer
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from node_processes import running
from ros_harness import ros_node

pytestmark = pytest.mark.ros
PEER = str(Path(msg_peer.__file__))


def receive(domain: int, env: dict, args: list[str], topics: dict, until, timeout_s=30.0):
    """Subscribe to `topics` ({name: type}), start the peer, spin until `until(received)`."""
    received: dict[str, list] = {name: [] for name in topics}
    with ros_node(domain, "receiver") as ros:
        for name, msg_type in topics.items():
            ros.node.create_subscription(msg_type, name, received[name].append,
                                         msg_peer.RELIABLE)
        with running([sys.executable, PEER, *args], env) as peer:  # exits by itself, with 0
            ros.until(lambda: until(received), timeout_s)
            assert peer.wait(timeout=30) == 0, f"publisher process failed with {peer.returncode}"
        return received


def test_each_message_type_arrives_intact(ros_domain, ros_env):
    topics = {"test_audio": AudioChunk, "test_face": FaceCoefficients}
    got = receive(ros_domain, ros_env, ["samples"], topics,
                  until=lambda r: all(r.values()))
    audio, face = got["test_audio"], got["test_face"]
    assert len(audio) == 1 and len(face) == 1
    want_a, want_f = msg_peer.sample_audio(7), msg_peer.sample_face()
    a = audio[0]
    assert (a.header.stamp.sec, a.header.stamp.nanosec) == (
        want_a.header.stamp.sec, want_a.header.stamp.nanosec)
    assert a.header.frame_id == "peer_mic/7"
    assert (a.sample_rate, a.channels, a.encoding) == (16000, 1, "S16LE")
    np.testing.assert_array_equal(np.frombuffer(bytes(a.data), "<i2"), msg_peer.chunk_samples(7))
    f = face[0]
    assert (f.header.stamp.sec, f.header.stamp.nanosec) == (12, 345_678_901)
    assert f.header.frame_id == "partner_face" and f.rig == "arkit52"
    assert list(f.names) == list(want_f.names)
    np.testing.assert_array_equal(np.asarray(f.values, np.float32),
                                  np.asarray(want_f.values, np.float32))


def test_two_seconds_of_audio_chunks_arrive_complete_and_in_order(ros_domain, ros_env):
    n_chunks = int(2.0 * 16000 / 512)  # 62 chunks of 32 ms, 31.25 per second
    got = receive(ros_domain, ros_env, ["stream", "2.0"], {"test_audio": AudioChunk},
                  until=lambda r: len(r["test_audio"]) >= n_chunks)["test_audio"]
    assert len(got) == n_chunks
    assert [m.header.frame_id for m in got] == [f"peer_mic/{i}" for i in range(n_chunks)]
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in got])
    np.testing.assert_allclose(np.diff(stamps), 512 / 16000, atol=1e-6)
    for i, m in enumerate(got):
        np.testing.assert_array_equal(np.frombuffer(bytes(m.data), "<i2"),
                                      msg_peer.chunk_samples(i))
