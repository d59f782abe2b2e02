"""mic_node against a PulseAudio virtual source: real capture, real DDS, stamps at capture time
on a contiguous sample-count timeline."""
from __future__ import annotations

import re
import sys
import time

import numpy as np
import pytest

from dualtalk_msgs.msg import AudioChunk
from dualtalk_ros.bridge.capture_clock import NS_PER_S, SLEW_SAMPLES_PER_BUFFER
from dualtalk_ros.nodes.qos import SENSOR
from node_processes import running
from ros_harness import ros_node
from virtual_mic import RATE, VirtualMic

pytestmark = pytest.mark.ros


def test_mic_node_publishes_capture_stamped_chunks(tmp_path, ros_domain, ros_env):
    # White noise: every chunk's position in the signal can be found by correlation.
    signal = np.random.default_rng(0).normal(0, 4000, RATE * 30).clip(-32000, 32000)
    signal = signal.astype(np.int16)
    received: list[tuple[float, AudioChunk]] = []
    cmd = [sys.executable, "-m", "dualtalk_ros.nodes.mic_node", "--ros-args", "-p",
           "device:=pulse", "-r", "audio:=mic_audio"]
    log = tmp_path / "mic_node.log"
    with VirtualMic(tmp_path, signal) as mic, ros_node(ros_domain, "mic_listener") as ros, \
            open(log, "w") as log_file:
        env = dict(ros_env, **{k: mic.env[k] for k in ("HOME", "XDG_RUNTIME_DIR")})
        # A clean exit on SIGTERM, checked on leaving; the log holds the node's capture totals.
        with running(cmd, env, stdout=log_file, stderr=log_file) as node_proc:
            # The project's sensor QoS, as the DualTalk node subscribes: ROS's default depth of
            # 5 drops chunks whenever this process spins late (seen on a loaded CI machine).
            ros.node.create_subscription(
                AudioChunk, "mic_audio", lambda m: received.append((time.time(), m)), SENSOR)
            ros.until(lambda: len(received) >= 60 or node_proc.poll() is not None, 40.0)
            assert node_proc.poll() is None, "mic_node exited"
    assert len(received) >= 60, f"only {len(received)} chunks in 40 s"
    msgs = [m for _, m in received[10:]]  # skip start-up buffering
    assert all(m.sample_rate == RATE and m.channels == 1 and m.encoding == "S16LE" for m in msgs)
    assert all(len(m.data) == 512 * 2 for m in msgs)
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs])
    arrivals = np.array([a for a, _ in received[10:]])
    # Locate each chunk in the written signal: none lost, repeated or reordered.
    positions = np.array([_position(signal, np.frombuffer(bytes(m.data), "<i2")) for m in msgs])
    assert np.all(np.diff(positions) == 512), "chunks lost, repeated or reordered"
    assert np.all(np.diff(stamps) > 0), "stamps not increasing"
    _check_contiguous(msgs, log.read_text())
    # A chunk's stamp is its first sample's capture time: after that sample entered the FIFO
    # could not be known before the sample existed, and is before the chunk arrived here. How
    # close it is to the true capture time is a timing figure: bench/ros_timing.py measures it.
    written = mic.start_time + positions / RATE
    assert np.all(stamps < arrivals), "a chunk stamped after it was received"
    assert np.all(stamps > mic.start_time), "a chunk stamped before the microphone started"
    assert np.all(arrivals > written), "a chunk received before its first sample was written"


def _check_contiguous(msgs: list[AudioChunk], log: str) -> None:
    """Consecutive stamps are one chunk apart (to the clock's slew, under half a sample),
    except at steps the node counted (re-anchors, stamp corrections), as it said on exit."""
    ns = np.array([m.header.stamp.sec * NS_PER_S + m.header.stamp.nanosec for m in msgs])
    off_samples = np.abs(np.diff(ns) - 512 * NS_PER_S // RATE) * RATE / NS_PER_S
    off = int(np.sum(off_samples > SLEW_SAMPLES_PER_BUFFER + 1e-3))  # + rounding to the ns
    totals = re.search(r"capture ended: (\d+) chunks published, .*reanchors (\d+), "
                       r"stamp_corrections (\d+)", log)
    assert totals, f"no capture totals logged on exit:\n{log}"
    published, reanchors, corrections = (int(g) for g in totals.groups())
    assert published >= len(msgs)
    steps_ms = np.round(np.diff(ns)[off_samples > SLEW_SAMPLES_PER_BUFFER] / 1e6, 3)
    assert off <= reanchors + corrections, (
        f"{off} steps not one chunk long ({steps_ms} ms), {reanchors} re-anchors and "
        f"{corrections} corrections counted")


def _position(signal: np.ndarray, chunk: np.ndarray) -> int:
    """Sample index of `chunk` in `signal` (exact match of a noise chunk)."""
    corr = np.correlate(signal.astype(float), chunk.astype(float), mode="valid")
    return int(np.argmax(corr))
