"""Publishes a two-person conversation to the DualTalk node in real time, logging publish times.

`python -m bench.conversation_pub --ns /bench_1 --seconds 20 --log pub.json`: the robot's voice
on `<ns>/self_audio`, the partner's on `<ns>/partner_audio` (512-sample S16LE chunks at 16 kHz,
stamped with the capture time of their first sample, published once complete, as a microphone
driver does) and the partner's face on `<ns>/partner_face` at 25 Hz. Prints one JSON line with
the stream's start time; writes every chunk's stamp and publish time (time.time()) to --log.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from bench.common import conversation, write_json
from dualtalk_core.rigs import get_rig
from dualtalk_core.units import FRAME_RATE_HZ, FRAME_S, SAMPLE_RATE_HZ, float_to_s16
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients

CHUNK_SAMPLES = 512  # 32 ms at 16 kHz: a common microphone block


def stamp(t: float) -> Time:
    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def audio_msg(pcm: np.ndarray, t: float) -> AudioChunk:
    msg = AudioChunk(sample_rate=SAMPLE_RATE_HZ, channels=1, encoding="S16LE")
    msg.header.stamp, msg.header.frame_id = stamp(t), "bench"
    msg.data = pcm.tobytes()
    return msg


def face_msg(names: list[str], values: np.ndarray, t: float) -> FaceCoefficients:
    msg = FaceCoefficients(rig="arkit52", names=names)
    msg.values = [float(v) for v in values]
    msg.header.stamp = stamp(t)
    return msg


def wait_for_node(pubs: list, timeout_s: float = 60.0) -> None:
    """Until every publisher has a subscriber (the node is up), then half a second more."""
    deadline = time.monotonic() + timeout_s
    while any(p.get_subscription_count() == 0 for p in pubs):
        if time.monotonic() > deadline:
            raise SystemExit("the DualTalk node's subscriptions never matched")
        time.sleep(0.05)
    time.sleep(0.5)


def publish(node: Node, ns: str, seconds: float) -> list[list[float]]:
    """Stream in real time; returns [chunk index, stamp, publish time] per chunk."""
    q = qos_profile_sensor_data
    pubs = [node.create_publisher(AudioChunk, f"{ns}/{n}", q)
            for n in ("self_audio", "partner_audio")]
    face_pub = node.create_publisher(FaceCoefficients, f"{ns}/partner_face", q)
    wait_for_node(pubs + [face_pub])
    tracks = [float_to_s16(x)
              for x in conversation(seconds + 0.1, SAMPLE_RATE_HZ)]
    names = list(get_rig("arkit52").names)
    faces = np.zeros((int(seconds * FRAME_RATE_HZ) + 1, len(names)), np.float32)
    faces[:, names.index("jawOpen")] = 0.2 * (1 + np.sin(np.arange(len(faces)) / 5.0))
    chunk_s = CHUNK_SAMPLES / SAMPLE_RATE_HZ
    t0 = time.time()
    print(json.dumps({"t0": t0}), flush=True)
    events = sorted([((i + 1) * chunk_s, "audio", i) for i in range(int(seconds / chunk_s))]
                    + [(k * FRAME_S, "face", k) for k in range(int(seconds * FRAME_RATE_HZ))])
    log = []
    for due, kind, i in events:
        time.sleep(max(0.0, t0 + due - time.time()))
        if kind == "audio":
            for pub, track in zip(pubs, tracks):
                pub.publish(audio_msg(track[i * CHUNK_SAMPLES:(i + 1) * CHUNK_SAMPLES],
                                      t0 + i * chunk_s))
            log.append([i, t0 + i * chunk_s, time.time()])
        else:
            face_pub.publish(face_msg(names, faces[i], t0 + i * 0.04))
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", required=True, help="the node's namespace")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--log", required=True, help="JSON file of chunk publish times")
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("bench_conversation")
    try:
        write_json(args.log, {"chunks": publish(node, args.ns, args.seconds)})
        time.sleep(1.0)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
