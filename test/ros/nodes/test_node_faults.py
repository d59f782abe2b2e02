"""Faults around the DualTalk node, over real DDS with the node at its defaults in its own process:
the partner's publisher dies and comes back; the node itself is killed and restarted mid-
conversation. The face must keep its 25 fps frame grid through the gap, use the partner's input
again once it returns, and resume after a restart.

The conversation comes from bench.conversation_pub (real-time, stamped with time.time(), the
clock the node runs on): a publisher killed and started again continues the same timeline.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from dualtalk_msgs.msg import FaceCoefficients

from dualtalk_core.child_processes import stop
from dualtalk_core.units import FRAME_S
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.nodes.qos import RELIABLE
from node_processes import running
from ros_harness import Spinner, ros_node

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
NS = "/faults"
NODE_CMD = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
            "-r", f"__ns:={NS}"]
SETTINGS = DualTalkNodeSettings()
STALE_S = SETTINGS.diagnostics.input_stale_s
# Hang detectors, not timings: a node that starts in more than a minute is broken.
START_TIMEOUT_S = 60.0


@dataclass
class Recorder:
    """What the node publishes, with this process's receive time (time.time())."""

    faces: list[tuple[float, float]] = field(default_factory=list)  # (received, stamp)
    diagnostics: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def listen(self, ros: Spinner) -> None:
        ros.node.create_subscription(FaceCoefficients, f"{NS}/face", self._face, RELIABLE)
        ros.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, RELIABLE)

    def _face(self, msg: FaceCoefficients) -> None:
        assert np.isfinite(msg.values).all()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.faces.append((time.time(), stamp))

    def _diag(self, msg: DiagnosticArray) -> None:
        self.diagnostics.append((time.time(), {kv.key: kv.value
                                               for kv in msg.status[0].values}))

    def stamps(self, after_s: float = 0.0) -> np.ndarray:
        return np.array([s for _, s in self.faces if s >= after_s])


def conversation(seconds: float, tmp: Path, env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "bench.conversation_pub", "--ns", NS, "--seconds",
            str(seconds), "--log", str(tmp / f"pub-{time.monotonic_ns()}.json")]


@contextmanager
def talking(ros: Spinner, seconds: float, tmp: Path, env: dict[str, str]
            ) -> Iterator[float]:
    """A conversation publisher; yields its stream start (its t0 line, printed once the node's
    inputs matched), spinning meanwhile so no face waits in our queue. Killed on leaving: it
    stands in for the partner, its own exit is not under test."""
    peer = subprocess.Popen(conversation(seconds, tmp, env), env=env, stdout=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(peer.stdout.readline()), daemon=True)
    reader.start()
    try:
        assert ros.until(lambda: bool(lines), START_TIMEOUT_S), "the publisher never started"
        yield float(json.loads(lines[0])["t0"])
    finally:
        stop(peer, signal.SIGKILL)
        peer.stdout.close()


def assert_on_grid(stamps: np.ndarray, what: str) -> None:
    """Every frame once, in order, 40 ms apart: nothing skipped, repeated or off the grid."""
    steps = np.diff(stamps)
    assert len(stamps) > 1 and np.allclose(steps, FRAME_S, atol=1e-6), (
        f"{what}: frame steps {sorted(set(np.round(steps, 4)))}")


def test_a_partner_publisher_that_dies_and_returns(ros_domain, ros_env, tmp_path):
    env = dict(ros_env, PYTHONPATH=f"{ROOT}:{ros_env.get('PYTHONPATH', '')}")
    rec = Recorder()
    with running(NODE_CMD, env) as node, ros_node(ros_domain, "faults_probe") as ros:
        rec.listen(ros)
        with talking(ros, 60.0, tmp_path, env):
            ros.until(lambda: False, 4.0)
        # killed, no goodbye: the partner's tracker and microphone vanish
        died = time.time()
        ros.until(lambda: False, 4.0)
        with talking(ros, 60.0, tmp_path, env) as back:
            ros.until(lambda: False, 4.0)
        assert node.poll() is None, "the node died"
    # Through the gap: frames stamped while nobody published were published while nobody
    # published (the node did not wait for the partner), on the unbroken grid.
    gap = [s for r, s in rec.faces if died + 1.0 <= s and r < back]
    assert len(gap) >= 0.9 * (back - died - 1.0 - 1.0) / FRAME_S, (len(gap), back - died)
    assert_on_grid(rec.stamps(), "the whole run")
    # After the return: the partner's audio and face are read again (their age in /diagnostics
    # falls back under the stale threshold) and faces follow the new input.
    after = [d for r, d in rec.diagnostics if r > back + 2.0]
    assert after, "no /diagnostics after the publisher returned"
    for key in ("age_partner_audio_s", "age_partner_face_s", "age_self_audio_s"):
        assert float(after[-1][key]) < STALE_S, (key, after[-1])
    during = [d for r, d in rec.diagnostics if died + STALE_S + 1.0 < r < back]
    assert during and float(during[-1]["age_partner_face_s"]) > STALE_S, during[-1:]
    assert rec.stamps(back + 1.0).size > 0


def test_the_node_killed_and_restarted_mid_conversation(ros_domain, ros_env, tmp_path, capsys):
    env = dict(ros_env, PYTHONPATH=f"{ROOT}:{ros_env.get('PYTHONPATH', '')}")
    rec = Recorder()
    with ros_node(ros_domain, "faults_probe") as ros:
        rec.listen(ros)
        node = subprocess.Popen(NODE_CMD, env=env)
        with talking(ros, 60.0, tmp_path, env):
            try:
                ros.until(lambda: False, 4.0)
                assert rec.faces, "no face before the kill"
            finally:
                node.send_signal(signal.SIGKILL)
                node.wait(timeout=10)
            killed = time.time()
            restarted = time.monotonic()
            with running(NODE_CMD, env) as node:
                assert ros.until(lambda: rec.faces[-1][0] > killed, START_TIMEOUT_S), \
                    "no face after the restart"
                first_face_s = time.monotonic() - restarted
                ros.until(lambda: False, 4.0)
                assert node.poll() is None, "the restarted node died"
    resumed = rec.stamps(killed)
    assert_on_grid(resumed, "after the restart")
    # The restarted node starts a new grid from the live conversation, close to now: not from
    # the first node's last stamp, not from a stale point of the partner's timeline.
    assert resumed[0] > killed and resumed[0] - killed < first_face_s + 1.0, (
        resumed[0] - killed, first_face_s)
    diag = [d for r, d in rec.diagnostics if r > killed + first_face_s + 2.0]
    assert diag and float(diag[-1]["age_partner_audio_s"]) < STALE_S, diag[-1:]
    with capsys.disabled():
        print(f"\n[faults] SIGKILL, restart: first face {first_face_s:.2f} s after the restart")
