"""`ros2 param set` on a running DualTalk node, over DDS: applied and visible, or refused with a
reason; never reported successful and ignored. Descriptors carry ranges and read-only flags."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from builtin_interfaces.msg import Duration
from dualtalk_msgs.msg import FaceCoefficients
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from dualtalk_core.model.network import DualTalkModel
from dualtalk_core.units import FRAME_MS
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.bridge.output_pacing import ASSUMED_CHUNK_MS, ROUND_MS
from node_processes import running
from ros_harness import Spinner, ros_node

pytestmark = pytest.mark.ros
SETTINGS = DualTalkNodeSettings()  # the node's defaults: it is started with no parameter
DEFAULT_MODEL = Path(__file__).parents[3] / "dualtalk_core" / "models" / "default"
LOOKAHEAD_MS = DualTalkModel.load(DEFAULT_MODEL).lookahead_ms  # the shipped model's: 40 ms


def _call(ros: Spinner, future: Any) -> Any:
    assert ros.until(future.done, 30.0), "parameter service did not answer"
    return future.result()


def _set(ros: Spinner, client: AsyncParameterClient, name: str, value: Any) -> Any:
    return _call(ros, client.set_parameters([Parameter(name, value=value)])).results[0]


def test_a_parameter_change_is_applied_or_refused_with_a_reason(ros_domain, ros_env):
    faces: list[FaceCoefficients] = []
    delays: list[float] = []
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node_cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node"]
    with running(node_cmd, ros_env) as proc, ros_node(ros_domain, "param_client") as ros:
        ros.node.create_subscription(FaceCoefficients, "face", faces.append, 100)
        ros.node.create_subscription(
            Duration, "pipeline_delay", lambda d: delays.append(d.sec + d.nanosec * 1e-9),
            latched)
        client = AsyncParameterClient(ros.node, "dualtalk_node")
        assert client.wait_for_services(timeout_sec=60.0)
        assert ros.until(lambda: len(faces) > 5, 60.0), "the node publishes no face"
        assert faces[-1].header.frame_id == "robot_face"
        # Derived at start: the shipped model's lookahead, a chunk, a model run (under a hop,
        # or hops are skipped), the batch's wait (the hop less a frame) and the margin.
        assert ros.until(lambda: delays, 5.0), "no pipeline_delay"
        out, hop_ms = SETTINGS.output, SETTINGS.stream.hop_ms
        least_ms = LOOKAHEAD_MS + ASSUMED_CHUNK_MS + out.delay_margin_ms
        most_ms = least_ms + hop_ms + (hop_ms - FRAME_MS) + ROUND_MS
        assert least_ms <= 1000 * delays[0] <= most_ms, (delays[0], least_ms, most_ms)

        refused = {
            "stream.hop_ms": (-5.0, "read-only"),
            "stream.window_ms": (4000.0, "read-only"),
            "stream.smoothing.min_cutoff_hz": (-1.0, "range"),
            "inputs.queue_messages": ("many", "must be a number"),
            "diagnostics.inference_warn_ratio": (3.0, "must not exceed"),
        }
        for name, (value, reason) in refused.items():
            result = _set(ros, client, name, value)
            assert not result.successful and reason in result.reason, (name, result)

        applied = {"frame_id": "face_link", "stream.smoothing.beta": 0.2,
                   "output.delay_ms": 300, "inputs.max_clock_skew_s": 2.0}
        for name, value in applied.items():
            result = _set(ros, client, name, value)
            assert result.successful, (name, result.reason)
        assert ros.until(lambda: abs(delays[-1] - 0.3) < 1e-6, 5.0), delays  # republished
        seen = len(faces)
        assert ros.until(lambda: any(f.header.frame_id == "face_link"
                                     for f in faces[seen:]), 10.0)
        last = len(faces)
        assert ros.until(lambda: len(faces) > last + 10, 10.0)
        assert {f.header.frame_id for f in faces[last:]} == {"face_link"}

        names = ["stream.hop_ms", "stream.smoothing.beta", "output.delay_ms"]
        values = _call(ros, client.get_parameters(names)).values
        assert [v.double_value for v in values[:2]] == [40.0, 0.2]
        assert values[2].integer_value == 300  # an int is taken for a float setting

        described = _call(ros, client.describe_parameters(
            ["stream.hop_ms", "frame_id", "torch_threads", "device"])).descriptors
        hop, frame_id, threads, device = described
        assert hop.read_only and "multiple of the 40 ms frame" in hop.description
        assert (hop.floating_point_range[0].from_value,
                hop.floating_point_range[0].to_value) == (40.0, 2000.0)
        assert not frame_id.read_only
        assert threads.integer_range[0].to_value == 256
        assert "'cpu'" in device.additional_constraints
        assert proc.poll() is None, "the node died"
