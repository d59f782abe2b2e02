"""mic_node against a PulseAudio virtual source: real capture, real DDS, stamps at capture time."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from dualtalk_msgs.msg import AudioChunk
from dualtalk_ros.nodes.qos import SENSOR
from dualtalk_core.child_processes import stop
from ros_harness import ros_node
from virtual_mic import RATE, VirtualMic


def test_mic_node_publishes_capture_stamped_chunks(tmp_path, ros_domain, ros_env):
    # White noise: every chunk's position in the signal can be found by correlation.
    signal = np.random.default_rng(0).normal(0, 4000, RATE * 30).clip(-32000, 32000)
    signal = signal.astype(np.int16)
    received: list[tuple[float, AudioChunk]] = []
    with VirtualMic(tmp_path, signal) as mic, ros_node(ros_domain, "mic_listener") as ros:
        env = dict(ros_env, **{k: mic.env[k] for k in ("HOME", "XDG_RUNTIME_DIR")})
        node_proc = subprocess.Popen(
            [sys.executable, "-m", "dualtalk_ros.nodes.mic_node", "--ros-args", "-p",
             "device:=pulse", "-r", "audio:=mic_audio"], env=env)
        try:
            # The project's sensor QoS, as the DualTalk node subscribes: ROS's default depth of 5
            # drops chunks whenever this process spins late (seen on a loaded CI machine).
            ros.node.create_subscription(
                AudioChunk, "mic_audio", lambda m: received.append((time.time(), m)), SENSOR)
            ros.until(lambda: len(received) >= 60, 40.0)
        finally:
            stop(node_proc)
    assert len(received) >= 60, f"only {len(received)} chunks in 40 s"
    msgs = [m for _, m in received[10:]]  # skip start-up buffering
    assert all(m.sample_rate == RATE and m.channels == 1 and m.encoding == "S16LE" for m in msgs)
    assert all(len(m.data) == 512 * 2 for m in msgs)
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs])
    # Locate each chunk in the written signal; its first sample entered the FIFO at
    # start_time + position / RATE: the stamp must match that, not the arrival time.
    positions = np.array([_position(signal, np.frombuffer(bytes(m.data), "<i2")) for m in msgs])
    assert np.all(np.diff(positions) == 512), "chunks lost, repeated or reordered"
    written = mic.start_time + positions / RATE
    error = stamps - written
    print("stamp - capture time: median %.1f ms, range %.1f..%.1f ms" % (
        1e3 * np.median(error), 1e3 * error.min(), 1e3 * error.max()))
    # PortAudio's ADC estimate through PulseAudio is within one buffer of the truth here. It
    # drifts while the server adapts its latency (seen: 13 ms over the first second on a fresh
    # CI machine, not along a straight line) and moves by up to ~6 ms from one chunk to the
    # next (measured 4-6 ms here). Stamps taken at arrival would jump by a large part of a
    # 32 ms chunk whenever PulseAudio hands over chunks in bursts; that must not leak in.
    assert np.all(np.abs(error) < 0.08), error
    steps = np.abs(np.diff(error))
    print("largest chunk-to-chunk change of that error: %.1f ms" % (1e3 * steps.max()))
    assert steps.max() < 0.012, steps


def _position(signal: np.ndarray, chunk: np.ndarray) -> int:
    """Sample index of `chunk` in `signal` (exact match of a noise chunk)."""
    corr = np.correlate(signal.astype(float), chunk.astype(float), mode="valid")
    return int(np.argmax(corr))
