"""A separate OS process that publishes known dualtalk_msgs messages for transport tests.

`python msg_peer.py samples` publishes one AudioChunk and one FaceCoefficients;
`python msg_peer.py stream SECONDS` publishes real-time AudioChunks of 512 S16LE samples at 16 kHz.
Both wait for a subscriber first, so nothing is published into the void.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy

from dualtalk_msgs.msg import AudioChunk, FaceCoefficients

CHUNK = 512
RATE = 16000
RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)


def chunk_samples(index: int) -> np.ndarray:
    """Deterministic int16 samples of chunk `index` (a tone whose phase encodes the index)."""
    n = np.arange(index * CHUNK, (index + 1) * CHUNK)
    return (8000 * np.sin(2 * np.pi * 440 * n / RATE) + index).astype("<i2")


def sample_audio(index: int) -> AudioChunk:
    t = 1_700_000_000 + index * CHUNK / RATE
    msg = AudioChunk()
    msg.header.stamp = Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)))
    msg.header.frame_id = f"peer_mic/{index}"
    msg.sample_rate = RATE
    msg.channels = 1
    msg.encoding = AudioChunk.ENCODING_S16LE
    msg.data = chunk_samples(index).tobytes()
    return msg


def sample_face() -> FaceCoefficients:
    msg = FaceCoefficients()
    msg.header.stamp = Time(sec=12, nanosec=345_678_901)
    msg.header.frame_id = "partner_face"
    msg.rig = "arkit52"
    msg.names = ["jawOpen", "eyeBlinkLeft", "mouthSmile_L", "headYaw"]
    msg.values = [0.25, 1.0, 0.5, -0.125]
    return msg


def wait_for_subscribers(node, publishers, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(p.get_subscription_count() == 0 for p in publishers):
        if time.monotonic() > deadline:
            raise SystemExit("no subscriber matched within %.0f s" % timeout_s)
        rclpy.spin_once(node, timeout_sec=0.05)


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("msg_peer")
    audio_pub = node.create_publisher(AudioChunk, "test_audio", RELIABLE)
    if sys.argv[1] == "samples":
        face_pub = node.create_publisher(FaceCoefficients, "test_face", RELIABLE)
        wait_for_subscribers(node, [audio_pub, face_pub])
        audio_pub.publish(sample_audio(7))
        face_pub.publish(sample_face())
    else:
        wait_for_subscribers(node, [audio_pub])
        n_chunks = int(float(sys.argv[2]) * RATE / CHUNK)
        start = time.monotonic()
        for i in range(n_chunks):
            time.sleep(max(0.0, start + i * CHUNK / RATE - time.monotonic()))
            audio_pub.publish(sample_audio(i))
    time.sleep(1.0)  # let reliable delivery finish before the participant goes away
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
