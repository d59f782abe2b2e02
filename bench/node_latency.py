"""End to end through the node over DDS: latency and output-period jitter of the 25 fps face.

`python -m bench.node_latency --out node.json [--seconds 30] [--designs windowed incremental]`.
The node runs with its defaults (`DualTalkNodeSettings`, no parameter given) for each design
(bench/designs.py): `incremental` = the defaults; `windowed` = the defaults plus
`stream.stepper:=windowed stream.hop_ms:=80.0`. Per design, three processes
on one fresh ROS domain (DDS on localhost): the DualTalk node
(its own process, under a unique namespace so no other run's topics mix in), the publisher
`bench.conversation_pub` replaying a real-time conversation, and this process recording the
node's `face` topic at receive time (time.time(); one clock for all three processes). Figures,
over frames stamped after a warm-up:
- latency = receive time - frame stamp (the stamp is the start of the frame's audio span);
- audio-to-face = receive time of the first frame covering a chunk's audio - the chunk's
  publish time;
- jitter = |inter-arrival time - 40 ms| of consecutive frames;
- frames per 10 s = (frames received - 1) / (last arrival - first arrival) x 10 s: the output
  rate over the measured span (dropped frames and a delay raised mid-run both lower it);
- the node's CPU time per stream second (/proc) and its last /diagnostics received while the
  conversation was still streaming (the derived `output_delay_ms`, its own frame latency
  percentiles, counters); the delay of the very last one, after the stream ended, too.
Frames stamped in the first WARMUP_S or the last END_S of the conversation are left out.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
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

from bench.common import (load_avg, percentiles, python_env,
                          write_json)
from bench.designs import DESIGNS, LABELS, design_stream, model_name, node_params
from diagnostic_msgs.msg import DiagnosticArray
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_core.child_processes import stop_all
from dualtalk_core.units import FRAME_S
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.launching.ros_domains import claim_domain

WARMUP_S = 1.0  # frames stamped earlier are left out: first windows, allocations, discovery
# Frames stamped in the conversation's last END_S are left out too: their lookahead (200 ms)
# passes the end of the published audio, so they wait for the input timeout, as at a stall.
END_S = 0.5
HIST_BIN_MS = 5.0  # latency histogram bins (the node's pacing timer period)
NODE = DualTalkNodeSettings()  # what every run uses: no parameter is given but the model
log = logging.getLogger("bench.node_latency")


def node_command(ns: str, params: list[str]) -> list[str]:
    """The node as `ros2 run` would start it, with `params` (`-p name:=value ...`)."""
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
        self.diagnostics: list[tuple[float, dict[str, str]]] = []  # (receive time, values)
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
                self.diagnostics.append((time.time(),
                                         {kv.key: kv.value for kv in status.values}))

    def spin_until(self, deadline: float) -> None:
        while time.time() < deadline:
            self.executor.spin_once(timeout_sec=0.005)

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def run_once(params: list[str], seconds: float, domain: int) -> dict[str, Any]:
    """Node + publisher + recorder for one configuration; raw receive and publish times."""
    ns = f"/bench_{os.getpid()}_{domain}"
    env = python_env({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE":
                      "LOCALHOST", "ROS_LOCALHOST_ONLY": "1"})
    recorder = Recorder(domain, ns)
    with tempfile.TemporaryDirectory() as tmp:
        node_log = open(Path(tmp) / "node.log", "w+")  # a pipe could fill and stall the node
        node = subprocess.Popen(node_command(ns, params), env=env,
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
            "diagnostics": recorder.diagnostics}


def analyse(raw: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Latency, audio-to-face delay, jitter (ms) and output rate from one run's receive and
    publish times; the node's own figures from its last /diagnostics."""
    t0 = raw["t0"]
    received = {}
    for arrival, stamp in raw["faces"]:
        received.setdefault(round((stamp - t0) / FRAME_S), (arrival, stamp))
    first, last = round(WARMUP_S / FRAME_S), round((seconds - END_S) / FRAME_S) - 1
    ks = [k for k in range(first, last + 1) if k in received]
    arrival = np.array([received[k][0] for k in ks])
    stamps = np.array([received[k][1] for k in ks])
    gaps = np.diff(arrival)[np.diff(ks) == 1]  # consecutive frames only
    audio_to_face = [received[k][0] - published for _, stamp, published in raw["chunks"]
                     if first <= (k := int((stamp - t0) / FRAME_S + 1e-9)) <= last
                     and k in received]
    latency = 1e3 * (arrival - stamps)
    span_s = float(arrival.max() - arrival.min()) if len(ks) > 1 else float("nan")
    return {"frames_expected": last - first + 1, "frames_received": len(ks),
            "span_s": span_s,
            "frames_per_10s": (len(ks) - 1) / span_s * 10.0 if span_s > 0 else float("nan"),
            "latency_ms": percentiles(latency), "latency_hist": histogram(latency),
            "latency_samples_ms": [round(float(x), 2) for x in latency],
            "audio_to_face_ms": percentiles(1e3 * np.array(audio_to_face)),
            "jitter_ms": percentiles(1e3 * np.abs(gaps - FRAME_S)),
            "node_cpu_rtf": raw["node_cpu_s"] / seconds,
            **diagnostics(raw["diagnostics"], t0 + seconds)}


def histogram(values_ms: np.ndarray, bin_ms: float = HIST_BIN_MS) -> dict[str, Any]:
    """Counts in `bin_ms` bins from the bin holding the smallest value to the largest's."""
    if not len(values_ms):
        return {"bin_ms": bin_ms, "start_ms": 0.0, "counts": []}
    start = float(np.floor(values_ms.min() / bin_ms) * bin_ms)
    n = int(np.floor((values_ms.max() - start) / bin_ms)) + 1
    counts = np.bincount(((values_ms - start) // bin_ms).astype(int), minlength=n)
    return {"bin_ms": bin_ms, "start_ms": start, "counts": counts.tolist()}


def diagnostics(reports: list[tuple[float, dict[str, str]]], end: float) -> dict[str, Any]:
    """The node's own figures from its last /diagnostics received before `end` (the stream's
    end; NaN where it had none yet), and the output delay of the very last one."""
    streaming = [values for received, values in reports if received < end]
    diag = streaming[-1] if streaming else {}
    after = reports[-1][1].get("output_delay_ms", "nan") if reports else "nan"

    def number(key: str) -> float:
        try:
            return float(diag[key])
        except (KeyError, ValueError):  # missing, or "none yet"
            return float("nan")

    return {"lookahead_ms": number("lookahead_ms"),
            "inference_ms_mean": number("inference_ms_mean"),
            "output_delay_ms": number("output_delay_ms"),
            "output_delay_mode": diag.get("output_delay_mode", "-"),
            "output_delay_ms_after_end": float(after) if after != "none yet" else float("nan"),
            "node_latency_p50_ms": number("frame_latency_p50_ms"),
            "node_latency_p99_ms": number("frame_latency_p99_ms"),
            "skipped_hops": int(diag.get("skipped_hops", "0")),
            "gaps_filled": int(diag.get("self_audio.gaps_filled", "0"))
            + int(diag.get("partner_audio.gaps_filled", "0"))}


def run_design(design: str, seconds: float, domain: int) -> dict[str, Any]:
    """One design's run at the node's defaults (see `designs.node_params`), analysed."""
    params = node_params(design)
    before = load_avg()
    raw = run_once(params, seconds, domain)
    run = {"design": design, "label": LABELS[design], "params": params,
           "hop_ms": design_stream(design).hop_ms, "threads": NODE.torch_threads, "domain": domain,
           "seconds": seconds, "warmup_s": WARMUP_S, "end_s": END_S,
           "model": model_name(design),
           "load_avg_before": before, "load_avg_after": load_avg(), **analyse(raw, seconds)}
    log.info("%s: latency p95 %.0f ms, jitter p99 %.1f ms, %.1f frames / 10 s, delay %.0f ms",
             design, run["latency_ms"]["p95"], run["jitter_ms"]["p99"],
             run["frames_per_10s"], run["output_delay_ms"])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=30.0, help="conversation length")
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.node] %(message)s")
    runs = []
    for design in args.designs:
        with claim_domain() as claim:  # no test run or shell on this machine shares it
            runs.append(run_design(design, args.seconds, claim.domain))
    write_json(args.out, {"runs": runs})


if __name__ == "__main__":
    main()
