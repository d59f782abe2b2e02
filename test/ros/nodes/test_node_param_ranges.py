"""Bad parameters stop a node at start with one line naming the parameter (exit 2, no
traceback); at run time a bad `ros2 param set` is refused with the reason and changes nothing.

The cases are the issue's: a string where a number is declared, a value out of range, NaN, an
unknown key (a top-level `hop_ms: 50`, a typo under a group); an int for a double is accepted.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from dualtalk_core.child_processes import stop
from ros_harness import Spinner, ros_node

NODE = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args"]


def _params_file(path: Path, body: str, node: str = "dualtalk_node") -> Path:
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    path.write_text(f"/**/{node}:\n  ros__parameters:\n{indented}\n")
    return path


def _start_fails(env: dict[str, str], *args: str) -> str:
    """The node's one error line; asserts exit status 2 and no traceback."""
    done = subprocess.run(NODE + list(args), env=env, capture_output=True, text=True,
                          timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if "ERROR" in line]
    assert len(errors) == 1, out
    return errors[0]


@pytest.mark.parametrize("body, needles", [
    ('stream:\n  hop_ms: "fast"', ["parameter stream.hop_ms must be a number", "'fast'"]),
    ("inputs:\n  queue_messages: -1",
     ["parameter inputs.queue_messages must be in [10, 100000], got -1"]),
    ("diagnostics:\n  period_s: 0", ["parameter diagnostics.period_s must be in [0.1, 60]"]),
    ("inputs:\n  max_clock_skew_s: .nan", ["parameter inputs.max_clock_skew_s", "finite"]),
    ("hop_ms: 50", ["unknown parameter(s) of dualtalk_node: hop_ms",
                    "did you mean stream.hop_ms?"]),
    ("stream:\n  smoothing:\n    betta: 0.2",
     ["unknown parameter(s)", "stream.smoothing.betta", "did you mean stream.smoothing.beta?"]),
    ("torch_threads: 1.5", ["parameter torch_threads must be a number (int)"]),
    ("device: tpu", ["parameter device must be one of"]),
])
def test_a_bad_params_file_stops_the_node_with_one_line(ros_env, tmp_path, body, needles):
    line = _start_fails(ros_env, "--params-file", str(_params_file(tmp_path / "p.yaml", body)))
    for needle in needles:
        assert needle in line, (needle, line)


def test_a_bad_command_line_parameter_and_a_bad_model_stop_the_node(ros_env, tmp_path):
    line = _start_fails(ros_env, "-p", "output.delay_ms:=-7.0")
    assert "parameter output.delay_ms must be in [-1, 5000], got -7.0" in line, line
    weights = tmp_path / "lite.pth"
    weights.write_bytes(b"not a checkpoint")
    line = _start_fails(ros_env, "-p", f"model:={weights}")
    assert str(weights) in line and "truncated or corrupted" in line, line


def test_a_missing_or_broken_params_file_is_one_line(ros_env, tmp_path):
    missing = tmp_path / "missing.yaml"
    line = _start_fails(ros_env, "--params-file", str(missing))
    assert str(missing) in line, line
    broken = tmp_path / "broken.yaml"
    broken.write_text("/**/dualtalk_node:\n  ros__parameters: [stream\n")
    line = _start_fails(ros_env, "--params-file", str(broken))
    assert str(broken) in line, line


def _call(ros: Spinner, future: Any) -> Any:
    assert ros.until(future.done, 30.0), "parameter service did not answer"
    return future.result()


def test_live_changes_out_of_range_are_refused_and_ints_taken_for_doubles(
        ros_domain, ros_env, tmp_path):
    params = _params_file(tmp_path / "p.yaml", "model: lite\nstream:\n  hop_ms: 80\n"
                          "inputs:\n  max_clock_skew_s: 4")
    proc = subprocess.Popen(NODE + ["--params-file", str(params)], env=ros_env)
    with ros_node(ros_domain, "param_ranges_client") as ros:
        try:
            client = AsyncParameterClient(ros.node, "dualtalk_node")
            assert client.wait_for_services(timeout_sec=60.0)
            names = ["stream.hop_ms", "inputs.max_clock_skew_s", "inputs.queue_messages"]
            before = _call(ros, client.get_parameters(names)).values
            assert before[0].integer_value == 80  # taken as 80.0 ms: the node started
            assert before[1].integer_value == 4
            refused = [("inputs.queue_messages", -1), ("inputs.max_clock_skew_s", math.nan),
                       ("inputs.max_clock_skew_s", 0.0), ("diagnostics.input_stale_s", "soon"),
                       ("inputs.queue_messages", 2.5)]
            for name, value in refused:
                result = _call(ros, client.set_parameters(
                    [Parameter(name, value=value)])).results[0]
                assert not result.successful and name in result.reason, (name, value, result)
            after = _call(ros, client.get_parameters(names)).values
            assert [v.integer_value for v in after] == [80, 4, 400], after
            assert proc.poll() is None, "the node died"
        finally:
            assert stop(proc), "the node did not stop on SIGTERM"
