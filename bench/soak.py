"""Soak: a long real-time conversation into the node at its defaults; drift, memory, skipped hops.

`python -m bench.soak --out soak.json [--seconds 600] [--no-partner-face]`.
The node (its own process, defaults, a unique namespace on a fresh ROS domain) is fed by
bench.conversation_pub for `--seconds`; this process records every face (receive time,
time.time(), and stamp) and /diagnostics, and samples the node's RSS every RSS_PERIOD_S.
With --no-partner-face the node's partner_face input is remapped to a topic nobody publishes
on: a robot whose face tracker never sees anyone (the engine's face timeline once failed past
~39 s without faces). Figures:
- frame stamps against the stream's 40 ms grid (ROS time = system time here; frame k is at
  anchor + k * 40 ms): the anchor's offset from the publisher's t0, the largest distance of a
  stamp from the grid, and frames received / expected, missing and repeated;
- latency = receive time - stamp over the run: its linear slope (ms per minute; ~0 means the
  output does not drift against ROS time) and p50/p99 in the first and the last minute; the
  same slope after subtracting the pipeline delay in force (the pacer moves it on purpose);
- node RSS every RSS_PERIOD_S: growth after the warm-up and its slope (MiB per minute);
- from the last /diagnostics: skipped hops, filled audio gaps, dropped-input counters;
- the node's CPU per stream second, and its exit status and time on SIGTERM at the end.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from rclpy.qos import qos_profile_sensor_data

from bench.common import load_avg, percentiles, python_env, write_json
from bench.node_latency import Recorder, cpu_seconds, node_command
from dualtalk_core.child_processes import rss_mib, stop
from dualtalk_core.units import FRAME_S
from dualtalk_ros.launching.ros_domains import claim_domain
from dualtalk_msgs.msg import FaceCoefficients
from dualtalk_ros.nodes.qos import LATCHED

RSS_PERIOD_S = 10.0
WARMUP_S = 30.0  # RSS growth is measured from here: the input window and caches fill first
MINUTE_S = 60.0
NO_FACE_TOPIC = "soak_nobody_publishes_here"


def record(recorder: Recorder, node: subprocess.Popen, until: float, t0: float
           ) -> list[tuple[float, float]]:
    """Spin until `until`, sampling the node's RSS every RSS_PERIOD_S: [(s since t0, MiB)]."""
    rss, next_sample = [], time.time()
    while time.time() < until:
        if time.time() >= next_sample:
            rss.append((round(time.time() - t0, 1), round(rss_mib(node.pid), 1)))
            next_sample += RSS_PERIOD_S
        recorder.executor.spin_once(timeout_sec=0.005)
    return rss


def run_once(seconds: float, domain: int, no_face: bool) -> dict[str, Any]:
    ns = f"/soak_{domain}"
    env = python_env({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE":
                      "LOCALHOST", "ROS_LOCALHOST_ONLY": "1"})
    params = ["-r", f"partner_face:={NO_FACE_TOPIC}"] if no_face else []
    recorder = Recorder(domain, ns)
    delays: list[tuple[float, float]] = []  # (receive time, pipeline delay s)
    recorder.node.create_subscription(
        Duration, f"{ns}/pipeline_delay",
        lambda d: delays.append((time.time(), d.sec + d.nanosec * 1e-9)), LATCHED)
    if no_face:  # the publisher waits for a reader of its faces: this process, not the node
        recorder.node.create_subscription(FaceCoefficients, f"{ns}/partner_face",
                                          lambda _: None, qos_profile_sensor_data)
    with tempfile.TemporaryDirectory() as tmp:
        node_log = open(Path(tmp) / "node.log", "w+")  # a pipe could fill and stall the node
        node = subprocess.Popen(node_command(ns, params), env=env, stdout=node_log,
                                stderr=subprocess.STDOUT, text=True)
        pub = None
        try:
            pub = subprocess.Popen([sys.executable, "-m", "bench.conversation_pub", "--ns", ns,
                                    "--seconds", str(seconds), "--log",
                                    str(Path(tmp) / "pub.json")],
                                   env=env, stdout=subprocess.PIPE, text=True)
            t0 = json.loads(pub.stdout.readline())["t0"]
            cpu_start = cpu_seconds(node.pid)
            rss = record(recorder, node, t0 + seconds + 2.0, t0)
            cpu = cpu_seconds(node.pid) - cpu_start
            died = node.poll() is not None
            stopped_at = time.perf_counter()
            in_time = stop(node, signal.SIGTERM)
            exit_s = time.perf_counter() - stopped_at
            if pub.wait(timeout=30) != 0:
                raise RuntimeError("the publisher failed")
        finally:
            stop(node)
            if pub is not None:
                stop(pub)
            node_log.seek(0)
            text = node_log.read()
            node_log.close()
            recorder.close()
    return {"t0": t0, "faces": recorder.faces, "diagnostics": recorder.diagnostics,
            "delays": delays,
            "rss": rss, "node_cpu_s": cpu, "died": died, "exit_code": node.returncode,
            "exit_s": round(exit_s, 3), "stopped_in_time": in_time,
            "traceback": "Traceback" in text, "log_tail": text[-1500:]}


def grid(faces: list[tuple[float, float]], t0: float, seconds: float) -> dict[str, Any]:
    """Stamps against a 40 ms grid, and frames received against expected.

    The node anchors its grid at the first audio chunk's stamp (the publisher's t0), or at its
    own clock when it started publishing from silence before any audio arrived: the anchor's
    offset from t0 is reported, and every stamp is measured against the node's own grid.
    """
    stamps = np.array([s for _, s in faces])
    if not len(stamps):
        return {"frames_expected": round(seconds / FRAME_S), "frames_received": 0}
    offset = (stamps[0] - t0) - round((stamps[0] - t0) / FRAME_S) * FRAME_S
    k = np.round((stamps - t0 - offset) / FRAME_S)
    residual_us = 1e6 * np.abs(stamps - t0 - offset - k * FRAME_S)
    inside = k[(k >= 0) & (k < round(seconds / FRAME_S))]
    expected = round(seconds / FRAME_S)
    return {"frames_expected": expected, "frames_received": int(len(inside)),
            "frames_missing": int(expected - len(np.unique(inside))),
            "frames_repeated": int(len(inside) - len(np.unique(inside))),
            "grid_anchor_offset_ms": round(1e3 * offset, 3),
            "stamp_off_grid_max_us": float(residual_us.max())}


def drift(faces: list[tuple[float, float]], t0: float, seconds: float) -> dict[str, Any]:
    """Latency (receive - stamp) over the run: its slope, and its first and last minute."""
    arr = np.array(faces)
    arr = arr[(arr[:, 1] >= t0 + 1.0) & (arr[:, 1] < t0 + seconds - 1.0)]  # start and end out
    latency_ms, minutes = 1e3 * (arr[:, 0] - arr[:, 1]), (arr[:, 1] - t0) / MINUTE_S
    slope = float(np.polyfit(minutes, latency_ms, 1)[0]) if len(arr) > 2 else float("nan")
    span = min(MINUTE_S, seconds / 2) / MINUTE_S
    return {"latency_slope_ms_per_min": round(slope, 3),
            "latency_first_ms": percentiles(latency_ms[minutes < span], (50, 99)),
            "latency_last_ms": percentiles(latency_ms[minutes >= minutes.max() - span],
                                           (50, 99))}


def memory(rss: list[tuple[float, float]]) -> dict[str, Any]:
    after = np.array([(t, m) for t, m in rss if t >= WARMUP_S and np.isfinite(m)])
    if len(after) < 2:
        return {"rss_mib": rss, "rss_growth_mib": float("nan")}
    slope = float(np.polyfit(after[:, 0] / MINUTE_S, after[:, 1], 1)[0])
    return {"rss_mib": rss, "rss_growth_mib": round(float(after[-1, 1] - after[0, 1]), 1),
            "rss_slope_mib_per_min": round(slope, 3), "rss_max_mib": float(after[:, 1].max())}


def counters(reports: list[tuple[float, dict[str, str]]]) -> dict[str, Any]:
    """The last /diagnostics in full (every counter the node keeps), and its skipped hops."""
    last = reports[-1][1] if reports else {}
    return {"diagnostics_last": last, "skipped_hops": int(last.get("skipped_hops", "0"))}


def paced_drift(faces: list[tuple[float, float]], delays: list[tuple[float, float]],
                t0: float, seconds: float) -> dict[str, Any]:
    """Latency minus the pipeline delay in force when the frame arrived: what is left once the
    pacer's own adjustments (it raises and slowly lowers the delay) are taken out. Its slope is
    the output's drift against ROS time."""
    if not delays:
        return {"paced_residual_slope_ms_per_min": float("nan")}
    arr = np.array(faces)
    arr = arr[(arr[:, 1] >= t0 + 1.0) & (arr[:, 1] < t0 + seconds - 1.0)]
    times, values = np.array(delays).T
    index = np.searchsorted(times, arr[:, 0], side="right") - 1
    keep = index >= 0
    residual_ms = 1e3 * (arr[keep, 0] - arr[keep, 1] - values[index[keep]])
    minutes = (arr[keep, 1] - t0) / MINUTE_S
    slope = float(np.polyfit(minutes, residual_ms, 1)[0]) if keep.sum() > 2 else float("nan")
    return {"paced_residual_slope_ms_per_min": round(slope, 3),
            "paced_residual_ms": percentiles(residual_ms, (50, 99)),
            "pipeline_delay_ms": {"first": 1e3 * values[0], "last": 1e3 * values[-1],
                                  "changes": len(values) - 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=600.0, help="conversation length")
    parser.add_argument("--no-partner-face", action="store_true",
                        help="the node never receives a partner face")
    args = parser.parse_args()
    before = load_avg()
    with claim_domain() as claim:
        raw = run_once(args.seconds, claim.domain, args.no_partner_face)
    result = {"seconds": args.seconds, "no_partner_face": args.no_partner_face,
              "load_avg_before": before, "load_avg_after": load_avg(),
              **grid(raw["faces"], raw["t0"], args.seconds),
              **drift(raw["faces"], raw["t0"], args.seconds), **memory(raw["rss"]),
              **paced_drift(raw["faces"], raw["delays"], raw["t0"], args.seconds),
              **counters(raw["diagnostics"]), "node_cpu_rtf": raw["node_cpu_s"] / args.seconds,
              **{k: raw[k] for k in ("died", "exit_code", "exit_s", "stopped_in_time",
                                     "traceback", "log_tail")}}
    write_json(args.out, result)
    print(f"soak: {args.seconds:.0f} s{' without partner face' if args.no_partner_face else ''}"
          f", frames {result['frames_received']}/{result['frames_expected']} (missing "
          f"{result['frames_missing']}, repeated {result['frames_repeated']}), off grid max "
          f"{result['stamp_off_grid_max_us']:.1f} us, latency slope "
          f"{result['latency_slope_ms_per_min']:.2f} ms/min (minus the pipeline delay "
          f"{result['paced_residual_slope_ms_per_min']:.2f}), rss growth "
          f"{result['rss_growth_mib']} MiB, skipped hops {result['skipped_hops']}, exit "
          f"{result['exit_code']} in {result['exit_s']:.2f} s")


if __name__ == "__main__":
    main()
