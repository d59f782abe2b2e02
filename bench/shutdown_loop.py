"""Start/stop the DualTalk node over and over under full CPU load: exit time and clean exits.

`python -m bench.shutdown_loop --out shutdown.json [--cycles 100] [--max-delay-s 6]`.
A busy-loop process runs on every core for the whole run. Each cycle starts the node at its
defaults (its own process, as `ros2 run` would), waits a random time in [0, max-delay-s] (so
many signals land during start-up: imports, model loading) and sends SIGINT or SIGTERM
(alternating). Half the cycles run mid-conversation (this process publishes a looping real-time
two-person conversation into the node's namespace), half idle (no input at all). Per cycle:
the signal, its delay, whether the node had finished starting, the exit status, the seconds from
the signal to the exit, and whether its output holds a traceback. A node that does not exit
within STOP_TIMEOUT_S has its stacks dumped and is killed (child_processes.stop).
Summary: exit time p50/p99/max, non-zero exits, tracebacks, cycles over the 2 s promise.
"""
from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data

from bench.common import conversation, load_avg, percentiles, python_env, write_json
from dualtalk_ros.launching.ros_domains import claim_domain
from bench.conversation_pub import CHUNK_SAMPLES, audio_msg, face_msg
from dualtalk_core.child_processes import stop, stop_all
from dualtalk_core.rigs import get_rig
from dualtalk_core.units import SAMPLE_RATE_HZ, float_to_s16
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients

PROMISE_S = 2.0  # issue 24: every node exits within 2 s of SIGINT/SIGTERM
STOP_TIMEOUT_S = 20.0
LOOP_S = 16.0  # the published conversation repeats with this period
TALK_NS, IDLE_NS = "/shutdown_talk", "/shutdown_idle"
READY_TEXT = "dualtalk_node]: model "  # the node's log line at the end of start-up


def load_generators(n: int) -> list[subprocess.Popen]:
    """One pure-Python busy loop per core: the node competes for every core."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def talk(stop_event: threading.Event, context: rclpy.Context) -> None:
    """Publish a looping conversation into TALK_NS in real time until `stop_event` is set."""
    node = rclpy.create_node("shutdown_loop_talk", context=context)
    q = qos_profile_sensor_data
    pubs = [node.create_publisher(AudioChunk, f"{TALK_NS}/{n}", q)
            for n in ("self_audio", "partner_audio")]
    face_pub = node.create_publisher(FaceCoefficients, f"{TALK_NS}/partner_face", q)
    tracks = [float_to_s16(x) for x in conversation(LOOP_S + 0.1, SAMPLE_RATE_HZ)]
    names = list(get_rig("arkit52").names)
    face = np.zeros(len(names), np.float32)
    chunk_s, chunks = CHUNK_SAMPLES / SAMPLE_RATE_HZ, int(LOOP_S * SAMPLE_RATE_HZ) // CHUNK_SAMPLES
    t0 = time.time()
    for i in itertools.count():
        if stop_event.is_set():
            break
        time.sleep(max(0.0, t0 + (i + 1) * chunk_s - time.time()))  # published once complete
        k = (i % chunks) * CHUNK_SAMPLES
        for pub, track in zip(pubs, tracks):
            pub.publish(audio_msg(track[k:k + CHUNK_SAMPLES], t0 + i * chunk_s))
        face[names.index("jawOpen")] = 0.2 * (1 + np.sin(i / 4.0))
        face_pub.publish(face_msg(names, face, t0 + i * chunk_s))
    node.destroy_node()


def wait_ready(log: Path, delay_s: float) -> float | None:
    """Sleep `delay_s`, polling the node's log: seconds from its start to its ready line, or
    None if it was still starting at the end (start-up time under load, for free)."""
    started = time.perf_counter()
    ready_s = None
    while (left := delay_s - (time.perf_counter() - started)) > 0:
        if ready_s is None and READY_TEXT in log.read_text(errors="replace"):
            ready_s = round(time.perf_counter() - started, 2)
        time.sleep(min(0.05, left))
    return ready_s


def one_cycle(index: int, delay_s: float, env: dict[str, str], log: Path) -> dict[str, Any]:
    sig = signal.SIGINT if index % 2 == 0 else signal.SIGTERM
    mode = "conversation" if index // 2 % 2 == 0 else "idle"
    cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
           "-r", f"__ns:={TALK_NS if mode == 'conversation' else IDLE_NS}"]
    with log.open("w") as out:
        # SIGINT's default restored: a shell's background job would otherwise ignore it
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        ready_s = wait_ready(log, delay_s)
        ready = ready_s is not None
        started = time.perf_counter()
        in_time = stop(proc, sig, STOP_TIMEOUT_S)
        exit_s = time.perf_counter() - started
    text = log.read_text(errors="replace")
    return {"cycle": index, "signal": sig.name, "mode": mode, "delay_s": round(delay_s, 3),
            "phase": "running" if ready else "starting", "ready_s": ready_s,
            "returncode": proc.returncode,
            "exit_s": round(exit_s, 3), "stopped_in_time": in_time,
            "traceback": "Traceback" in text, "startup_traceback": _before_project_code(text),
            "tail": text[-600:] if "Traceback" in text else ""}


def _before_project_code(text: str) -> bool:
    """A traceback with no project frame on its stack: a signal that came while the interpreter
    was still starting (site's .pth files, runpy), before any line of the node could install
    its handlers. Python prints its own KeyboardInterrupt there; counted apart."""
    if "Traceback" not in text:
        return False
    frames = [line for line in text.split("Traceback", 1)[1].splitlines()
              if line.strip().startswith("File ")]
    return not any("dualtalk_" in line for line in frames)


def summary(cycles: list[dict[str, Any]]) -> dict[str, Any]:
    exits = [c["exit_s"] for c in cycles]
    clean = (0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM)
    out: dict[str, Any] = {
        "cycles": len(cycles), "exit_s": percentiles(exits, (50, 99)),
        "over_promise": sum(x > PROMISE_S for x in exits),
        "nonzero_exits": sum(c["returncode"] != 0 for c in cycles),
        "unconventional_exits": sum(c["returncode"] not in clean for c in cycles),
        "tracebacks": sum(c["traceback"] for c in cycles),
        "startup_tracebacks": sum(c.get("startup_traceback", False) for c in cycles),
        "killed": sum(not c["stopped_in_time"] for c in cycles)}
    out["ready_s"] = percentiles([c["ready_s"] for c in cycles if c["ready_s"]], (50, 99))
    for key in ("phase", "mode", "signal"):
        for value in sorted({c[key] for c in cycles}):
            group = [c for c in cycles if c[key] == value]
            out[f"{key}={value}"] = {
                "n": len(group), "exit_s_max": max(c["exit_s"] for c in group),
                "nonzero_exits": sum(c["returncode"] != 0 for c in group),
                "tracebacks": sum(c["traceback"] for c in group)}
    return out


def run(cycles: int, max_delay_s: float, load_procs: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    claim = claim_domain()  # held until this process exits: no test or shell shares it
    domain = claim.domain
    env = python_env({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                      "ROS_LOCALHOST_ONLY": "1"})
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    stop_event = threading.Event()
    talker = threading.Thread(target=talk, args=(stop_event, context), daemon=True)
    loaders = load_generators(load_procs)
    results, load_seen = [], []
    started = time.perf_counter()
    try:
        talker.start()
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(cycles):
                results.append(one_cycle(i, rng.uniform(0.0, max_delay_s), env,
                                         Path(tmp) / "node.log"))
                load_seen.append(os.getloadavg()[0])
                last = results[-1]
                print(f"[shutdown_loop] {i + 1}/{cycles} {last['signal']} {last['mode']} "
                      f"{last['phase']} after {last['delay_s']:.2f} s: rc {last['returncode']}, "
                      f"exit {last['exit_s']:.2f} s{', TRACEBACK' if last['traceback'] else ''}",
                      flush=True)
    finally:
        stop_all(loaders, signal.SIGKILL, 5.0)
        stop_event.set()
        talker.join(timeout=2.0)
        rclpy.try_shutdown(context=context)
    return {"summary": summary(results), "cycles": results, "load_procs": load_procs,
            "max_delay_s": max_delay_s, "seconds": round(time.perf_counter() - started, 1),
            "load_avg_1min_during": percentiles(load_seen, (50,)), "load_avg_end": load_avg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--max-delay-s", type=float, default=12.0,
                        help="signals land uniformly in [0, this] after the node's start")
    parser.add_argument("--load-procs", type=int, default=os.cpu_count() or 1,
                        help="busy-loop processes (default: one per core)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(args.cycles, args.max_delay_s, args.load_procs, args.seed)
    write_json(args.out, result)
    s = result["summary"]
    print(f"shutdown: {s['cycles']} cycles, exit p50 {s['exit_s']['p50']:.2f} s, p99 "
          f"{s['exit_s']['p99']:.2f} s, max {s['exit_s']['max']:.2f} s, over {PROMISE_S:.0f} s "
          f"{s['over_promise']}, non-zero exits {s['nonzero_exits']}, tracebacks "
          f"{s['tracebacks']}, killed {s['killed']}")


if __name__ == "__main__":
    main()
