"""`dualtalk-run` when a node fails: the failure is one line, the other nodes keep running (as
under the launch file), and a stop signal still ends every child cleanly, without a traceback."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from dualtalk_core.child_processes import stop
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.bridge.share_files import params_file
from dualtalk_ros.nodes.qos import RELIABLE
from ros_harness import ros_node

NO_SUCH_DEVICE = "dualtalk-test-no-such-microphone"


def params(tmp_path: Path) -> Path:
    """The shipped parameters with the lite model and a microphone that exists nowhere."""
    tree = yaml.safe_load(params_file().read_text())
    tree["/**/dualtalk_node"]["ros__parameters"]["model"] = "lite"
    tree["/**/mic_node"]["ros__parameters"]["device"] = NO_SUCH_DEVICE
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


class Output:
    """A child's stderr, read as it comes (the runner's lines and its nodes' logs)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self.text += line

    def close(self) -> str:
        self._thread.join(timeout=10.0)
        return self.text


def start_runner(tmp_path: Path, env: dict[str, str], *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dualtalk_ros.launching.runner", "--namespace", "/runner_test",
         "--params-file", str(params(tmp_path)), *flags],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def child_pids(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"started (\w+) \(pid (\d+)\)", text)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_failed_mic_is_one_line_and_the_face_keeps_going(tmp_path, ros_domain, ros_env, sig):
    runner = start_runner(tmp_path, ros_env, "--use-mic", "--no-use-renderer")
    out = Output(runner)
    faces: list[float] = []
    with ros_node(ros_domain, "runner_failure_probe") as ros:
        ros.node.create_subscription(FaceCoefficients, "/runner_test/face",
                                     lambda m: faces.append(time.monotonic()), RELIABLE)
        try:
            assert ros.until(lambda: "mic_node exited" in out.text and len(faces) > 0, 60.0), \
                out.text[-3000:]
            failed_at = time.monotonic()
            assert ros.until(lambda: sum(t > failed_at for t in faces) >= 50, 30.0), \
                "dualtalk_node stopped publishing faces after the mic node failed"
            assert runner.poll() is None, "the runner stopped when the mic node failed"
        finally:
            assert stop(runner, sig), "the runner did not stop within 20 s"
    text = out.close()
    lines = [line for line in text.splitlines() if "mic_node exited" in line]
    assert lines == ["[dualtalk-run] mic_node exited with status 2 (its error is above); "
                     "still running: dualtalk_node"], text[-3000:]
    assert NO_SUCH_DEVICE in text and "use_mic:=false" in text  # the mic's one-line reason
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert runner.returncode == 1  # a node failed: say so to scripts
    assert not alive(child_pids(text)["dualtalk_node"]), "dualtalk_node outlived the runner"


def test_the_runner_ends_when_its_last_node_has_failed(tmp_path, ros_env):
    """A bad parameter stops dualtalk_node at start: nothing is left to run, the runner exits."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**/dualtalk_node:\n  ros__parameters:\n    stream:\n      hop_ms: 50.0\n")
    done = subprocess.run(
        [sys.executable, "-m", "dualtalk_ros.launching.runner", "--no-use-mic",
         "--no-use-renderer", "--params-file", str(bad)],
        env=ros_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    assert ("[dualtalk-run] dualtalk_node exited with status 2 (its error is above); "
            "no node left: stopping") in done.stderr, done.stderr[-3000:]
    assert "multiple of 40" in done.stderr and "Traceback" not in done.stderr
