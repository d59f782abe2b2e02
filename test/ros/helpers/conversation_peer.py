"""Publishes a two-person conversation to the DualTalk node in real time, from its own process.

`python conversation_peer.py CLIP.npz SECONDS [--garbage]`: the robot's voice on `self_audio`,
the partner's on `partner_audio` (512-sample S16LE chunks at 16 kHz, stamped with the capture
time of their first sample) and the partner's face on `partner_face` at 25 Hz. With --garbage,
own audio goes out at 48 kHz and partner audio at 8 kHz, and every input also receives a stream
of malformed messages. Prints a JSON line with the stream's start time.
"""
from __future__ import annotations

import itertools
import json
import sys
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.qos import qos_profile_sensor_data
from scipy.signal import resample_poly

from dualtalk_core.rigs import get_rig
from dualtalk_core.units import float_to_s16
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients


def stamp(t: float) -> Time:
    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def chunk_msg(data: bytes, rate: int, t: float, encoding: str = "S16LE", channels: int = 1,
              frame_id: str = "peer") -> AudioChunk:
    msg = AudioChunk(sample_rate=rate, channels=channels, encoding=encoding)
    msg.header.stamp, msg.header.frame_id = stamp(t), frame_id
    msg.data = data
    return msg


def face_msg(names: list[str], values, t: float) -> FaceCoefficients:
    msg = FaceCoefficients(rig="arkit52", names=names)
    msg.values = [float(v) for v in values]
    msg.header.stamp = stamp(t)
    return msg


def garbage(t: float) -> itertools.cycle:
    """Malformed inputs of every kind the node must survive, one per call."""
    pcm = (np.sin(np.arange(512)) * 3000).astype("<i2").tobytes()
    nan = np.full(512, np.nan, "<f4").tobytes()
    names = list(get_rig("arkit52").names)
    audio = [
        lambda t: chunk_msg(pcm[:-1], 16000, t),                      # odd byte count
        lambda t: chunk_msg(pcm, 16000, t, encoding="MP3"),            # unknown encoding
        lambda t: chunk_msg(nan, 16000, t, encoding="F32LE"),          # NaN samples
        lambda t: chunk_msg(b"", 16000, t),                            # empty data
        lambda t: chunk_msg(pcm, 16000, t + 3600.0),                   # far future
        lambda t: chunk_msg(pcm, 16000, t - 3600.0),                   # far past
        lambda t: chunk_msg(pcm, 0, t),                                # zero rate
        lambda t: chunk_msg(pcm, 16000, t, channels=0),                # zero channels
    ]
    faces = [
        lambda t: face_msg(["foo", "bar"], [0.1, 0.2], t),             # unknown names only
        lambda t: face_msg(["jawOpen"], [0.3], t),                     # most names missing
        lambda t: face_msg(names, [0.0] * (len(names) - 1), t),        # length mismatch
        lambda t: face_msg(names, [float("nan")] * len(names), t),     # NaN values
        lambda t: face_msg(names, [0.0] * len(names), t + 3600.0),     # far future
    ]
    return itertools.cycle(zip(itertools.cycle(audio), itertools.cycle(faces)))


def main() -> None:
    clip = np.load(sys.argv[1])
    seconds, bad = float(sys.argv[2]), "--garbage" in sys.argv
    own, partner, faces = clip["audio"][0], clip["audio"][1], clip["faces"][1]
    rates = (48000, 8000) if bad else (16000, 16000)
    tracks = [resample_poly(x, r, 16000) if r != 16000 else x
              for x, r in zip((own, partner), rates)]
    tracks = [float_to_s16(x) for x in tracks]
    chunk_s = 0.032
    rclpy.init()
    node = rclpy.create_node("conversation_peer")
    q = qos_profile_sensor_data
    pubs = [node.create_publisher(AudioChunk, n, q) for n in ("self_audio", "partner_audio")]
    face_pub = node.create_publisher(FaceCoefficients, "partner_face", q)
    deadline = time.monotonic() + 30
    while any(p.get_subscription_count() == 0 for p in pubs + [face_pub]):
        if time.monotonic() > deadline:
            raise SystemExit("the node's subscriptions never matched")
        time.sleep(0.05)
    time.sleep(0.5)
    names = list(get_rig("arkit52").names)
    bad_inputs = garbage(0.0)
    t0 = time.time()
    print(json.dumps({"t0": t0}), flush=True)
    events = sorted([(i * chunk_s, "audio", i) for i in range(int(seconds / chunk_s) + 1)]
                    + [(k * 0.04, "face", k) for k in range(int(seconds / 0.04) + 1)]
                    + ([(0.1 + j * 0.25, "bad", j) for j in range(int(seconds / 0.25))]
                       if bad else []))
    for offset, kind, i in events:
        # An input is published once it is complete: a chunk after its last sample.
        due = t0 + offset + (chunk_s if kind == "audio" else 0.0)
        time.sleep(max(0.0, due - time.time()))
        if kind == "audio":
            for pub, track, rate in zip(pubs, tracks, rates):
                n = int(round(chunk_s * rate))
                pub.publish(chunk_msg(track[i * n:(i + 1) * n].tobytes(), rate,
                                      t0 + i * chunk_s))
        elif kind == "face":
            face_pub.publish(face_msg(names, faces[min(i, len(faces) - 1)], t0 + offset))
        else:
            make_audio, make_face = next(bad_inputs)
            pubs[i % 2].publish(make_audio(time.time()))
            face_pub.publish(make_face(time.time()))
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
