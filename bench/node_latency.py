"""End to end through the node over DDS: latency and output-period jitter of the 25 fps face.

`python -m bench.node_latency --out node.json [--seconds 20] [--hop-ms 80 40]`. Per
configuration, three processes on one fresh ROS domain (DDS on localhost): the DualTalk node
(its own process, under a unique namespace so no other run's topics mix in), the publisher
`bench.conversation_pub` replaying a real-time conversation, and this process recording the
node's `face` topic at receive time (time.time(); one clock for all three processes). Figures,
over frames stamped after a warm-up:
- latency = receive time - frame stamp (the stamp is the start of the frame's audio span);
- audio-to-face = receive time of the first frame covering a chunk's audio - the chunk's
  publish time;
- jitter = |inter-arrival time - 40 ms| of consecutive frames;
- the node's CPU time per stream second (/proc) and its /diagnostics counters.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from bench.common import (DEFAULT_MODEL_DIR, load_avg, model_source, percentiles, python_env,
                          write_json)
from diagnostic_msgs.msg import DiagnosticArray
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_core.child_processes import stop_all
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

WARMUP_S = 1.0  # frames stamped earlier are left out: first windows, allocations, discovery
FRAME_S = 0.04
log = logging.getLogger("bench.node_latency")


def pick_domain(used: set[int]) -> int:
    """A ROS domain for one process group: random in 10..99, unlike this shell's and `used`."""
    taken = used | {int(os.environ.get("ROS_DOMAIN_ID", "-1"))}
    return random.SystemRandom().choice([d for d in range(10, 100) if d not in taken])


def node_command(ns: str, hop_ms: float, threads: int) -> list[str]:
    """The node as `ros2 run` would start it, on the shipped model or the lite preset."""
    source = model_source()
    params = ["-p", f"torch_threads:={threads}", "-p", f"stream.hop_ms:={hop_ms:.1f}"]
    if Path(source) != DEFAULT_MODEL_DIR:
        params += ["-p", f"model:={source}"]
    return [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
            "-r", f"__ns:={ns}", *params]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Recorder:
    """Subscribes to the node's face and /diagnostics in `domain`; keeps receive times."""

    def __init__(self, domain: int, ns: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("bench_recorder", context=self.context)
        self.faces: list[tuple[float, float]] = []  # (receive time, stamp)
        self.diagnostics: list[dict[str, str]] = []
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(FaceCoefficients, f"{ns}/face", self._face, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def _face(self, msg: FaceCoefficients) -> None:
        received = time.time()
        self.faces.append((received, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def _diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("dualtalk_node"):
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def spin_until(self, deadline: float) -> None:
        while time.time() < deadline:
            self.executor.spin_once(timeout_sec=0.005)

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def run_once(hop_ms: float, seconds: float, threads: int, domain: int) -> dict[str, Any]:
    """Node + publisher + recorder for one configuration; raw receive and publish times."""
    ns = f"/bench_{os.getpid()}_{domain}"
    env = python_env({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE":
                      "LOCALHOST", "ROS_LOCALHOST_ONLY": "1", "OMP_NUM_THREADS": str(threads)})
    recorder = Recorder(domain, ns)
    with tempfile.TemporaryDirectory() as tmp:
        node_log = open(Path(tmp) / "node.log", "w+")  # a pipe could fill and stall the node
        node = subprocess.Popen(node_command(ns, hop_ms, threads), env=env,
                                stdout=node_log, stderr=subprocess.STDOUT, text=True)
        pub = None
        try:
            pub_log = Path(tmp) / "pub.json"
            pub = subprocess.Popen([sys.executable, "-m", "bench.conversation_pub", "--ns", ns,
                                    "--seconds", str(seconds), "--log", str(pub_log)],
                                   env=env, stdout=subprocess.PIPE, text=True)
            t0 = json.loads(pub.stdout.readline())["t0"]
            cpu_start = cpu_seconds(node.pid)
            recorder.spin_until(t0 + seconds + 2.0)
            cpu = cpu_seconds(node.pid) - cpu_start
            if pub.wait(timeout=30) != 0:
                raise RuntimeError("the publisher failed")
            chunks = json.loads(pub_log.read_text())["chunks"]
            if node.poll() is not None:
                node_log.seek(0)
                raise RuntimeError(f"the node died: {node_log.read()[-2000:]}")
        finally:
            if not all(stop_all([pub, node])):  # a hung node's stacks went to its log
                node_log.seek(0)
                print(node_log.read()[-6000:], file=sys.stderr)
            node_log.close()
            recorder.close()
    return {"t0": t0, "faces": recorder.faces, "chunks": chunks, "node_cpu_s": cpu,
            "diagnostics": recorder.diagnostics[-1] if recorder.diagnostics else {}}


def analyse(raw: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Latency, audio-to-face delay and jitter (ms) from one run's receive and publish times."""
    t0 = raw["t0"]
    received = {}
    for arrival, stamp in raw["faces"]:
        received.setdefault(round((stamp - t0) / FRAME_S), (arrival, stamp))
    first, last = round(WARMUP_S / FRAME_S), round(seconds / FRAME_S) - 1
    ks = [k for k in range(first, last + 1) if k in received]
    arrival = np.array([received[k][0] for k in ks])
    stamps = np.array([received[k][1] for k in ks])
    gaps = np.diff(arrival)[np.diff(ks) == 1]  # consecutive frames only
    audio_to_face = [received[k][0] - published for _, stamp, published in raw["chunks"]
                     if first <= (k := int((stamp - t0) / FRAME_S + 1e-9)) <= last
                     and k in received]
    diag = raw["diagnostics"]
    return {"frames_expected": last - first + 1, "frames_received": len(ks),
            "latency_ms": percentiles(1e3 * (arrival - stamps)),
            "audio_to_face_ms": percentiles(1e3 * np.array(audio_to_face)),
            "jitter_ms": percentiles(1e3 * np.abs(gaps - FRAME_S)),
            "node_cpu_rtf": raw["node_cpu_s"] / seconds,
            "lookahead_ms": float(diag.get("lookahead_ms", "nan")),
            "inference_ms_mean": float(diag.get("inference_ms_mean", "nan")),
            "skipped_hops": int(diag.get("skipped_hops", "0")),
            "gaps_filled": int(diag.get("self_audio.gaps_filled", "0"))
            + int(diag.get("partner_audio.gaps_filled", "0"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=20.0, help="conversation length")
    parser.add_argument("--hop-ms", type=float, nargs="+",
                        default=[DualTalkNodeSettings().stream.hop_ms, 40.0])
    parser.add_argument("--threads", type=int, default=1, help="the node's torch threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.node] %(message)s")
    runs, used = [], set()
    for hop_ms in args.hop_ms:
        domain = pick_domain(used)
        used.add(domain)
        before = load_avg()
        raw = run_once(hop_ms, args.seconds, args.threads, domain)
        run = {"hop_ms": hop_ms, "threads": args.threads, "domain": domain,
               "seconds": args.seconds, "warmup_s": WARMUP_S, "model": model_source(),
               "load_avg_before": before, "load_avg_after": load_avg(),
               **analyse(raw, args.seconds)}
        log.info("hop %.0f ms: latency p95 %.0f ms, jitter p99 %.1f ms", hop_ms,
                 run["latency_ms"]["p95"], run["jitter_ms"]["p99"])
        runs.append(run)
    write_json(args.out, {"runs": runs})


if __name__ == "__main__":
    main()
