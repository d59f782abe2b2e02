"""The fuzzer's eyes: the node's face, head pose and /diagnostics, recorded in their own process.

`python -m dualtalk_ros.fuzzing.fuzz_probe --out probe.json` (started by `dualtalk-fuzz` on
the node's domain). A separate process, because the fuzzer's own publishing (MB payloads, 200k
name lists) would hold the GIL and delay receive times: the jitter measured would be ours.
It prints `ready` once subscribed and `diagnostics <time>` for every report of the node, so the
fuzzer knows when the node is up and whether it still reports; on SIGINT it writes what it
recorded (receive times on time.time(), one clock for every process here) and exits.
Every face with a non-finite value or a value outside its channel's documented range (the
rig's, `rigs.Rig.range_arrays`; |value| > 10 for a rig not known here), and every head pose that
is not finite or whose quaternion norm differs from 1 by more than 1e-3, is counted as bad
output.
`fuzz_report` turns the record into the fuzzer's figures.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from dualtalk_core import rigs
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.bridge import messages
from dualtalk_ros.nodes.qos import RELIABLE

MAX_ABS_OUTPUT = 10.0
QUATERNION_NORM_TOL = 1e-3
NODE_STATUS = "dualtalk_node"  # the node's DiagnosticStatus name starts with its node name
EXAMPLES = 5  # bad outputs kept verbatim in the record


class Probe(Node):
    """Subscribes to `face`, `head_pose` and `/diagnostics`; keeps receive times and checks."""

    def __init__(self) -> None:
        super().__init__("dualtalk_fuzz_probe")
        self.faces: list[tuple[float, float]] = []  # (receive time, stamp)
        self.poses: list[float] = []  # receive times
        self.bad_faces: list[dict[str, Any]] = []
        self.bad_poses: list[dict[str, Any]] = []
        self.diagnostics: list[tuple[float, int]] = []  # (receive time, level)
        self.last_values: dict[str, str] = {}
        self.last_message = ""
        self.create_subscription(FaceCoefficients, "face", self._face, RELIABLE)
        self.create_subscription(PoseStamped, "head_pose", self._pose, RELIABLE)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, RELIABLE)

    def _face(self, msg: FaceCoefficients) -> None:
        received = time.time()
        t = messages.stamp_to_s(msg.header.stamp)
        self.faces.append((received, t))
        values = np.asarray(msg.values, dtype=np.float64)
        if not np.isfinite(values).all() or not _in_range(msg, values):
            self.bad_faces.append({"received": received, "stamp": t, "values": [
                v if math.isfinite(v) else str(v) for v in values[:8].tolist()]})

    def _pose(self, msg: PoseStamped) -> None:
        self.poses.append(time.time())
        o, p = msg.pose.orientation, msg.pose.position
        q = np.array([o.x, o.y, o.z, o.w, p.x, p.y, p.z])
        if not np.isfinite(q).all() or abs(np.linalg.norm(q[:4]) - 1.0) > QUATERNION_NORM_TOL:
            self.bad_poses.append({"received": self.poses[-1], "quaternion": [
                v if math.isfinite(v) else str(v) for v in q[:4].tolist()]})

    def _diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(NODE_STATUS):
                received = time.time()
                level = int.from_bytes(status.level, "little") if isinstance(
                    status.level, bytes) else int(status.level)
                self.diagnostics.append((received, level))
                self.last_values = {kv.key: kv.value for kv in status.values}
                self.last_message = status.message
                print(f"diagnostics {received:.3f}", flush=True)

    def record(self) -> dict[str, Any]:
        return {"faces": self.faces, "poses": self.poses, "diagnostics": self.diagnostics,
                "bad_faces": len(self.bad_faces), "bad_poses": len(self.bad_poses),
                "bad_examples": (self.bad_faces[:EXAMPLES] + self.bad_poses[:EXAMPLES]),
                "last_values": self.last_values, "last_message": self.last_message}


def _in_range(msg: FaceCoefficients, values: np.ndarray) -> bool:
    """Whether every value lies in its channel's documented range."""
    rig = rigs.RIGS.get(msg.rig)
    if rig is None or tuple(msg.names) != rig.names:
        return not values.size or float(np.abs(values).max()) <= MAX_ABS_OUTPUT
    lower, upper = rig.range_arrays()
    return bool((values >= lower).all() and (values <= upper).all())


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON record written on SIGINT")
    opts = parser.parse_args(args)
    rclpy.init()
    probe = Probe()
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    print("ready", flush=True)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        opts.out.write_text(json.dumps(probe.record()))
        probe.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
