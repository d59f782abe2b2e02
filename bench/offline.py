"""Offline throughput: clip-seconds per second and peak memory against clip length and batch.

`python -m bench.offline --out offline.json [--lengths-s 1 5 15 30 60] [--batches 1 2 4 8]`.
Every point runs in a fresh process (so its peak RSS is its own) and reports:
- `predict`: one whole-clip `model.predict` (what dualtalk-eval does), by clip length;
- `process_clip`: the clip through the streaming engine (bag replay, offline tests), by clip
  length, with its naive baseline (hop 40 ms: the whole window recomputed every frame);
- `batch`: B clips in one batched forward against B one-at-a-time forwards, by B.
Memory: peak RSS of the process (ru_maxrss), RSS before the timed call (model loaded and warmed
up), their difference (what the call needs: torch tensors and numpy arrays), and tracemalloc's
peak (the Python and numpy part of it).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bench.common import conversation, load_avg, model_source, run_section, write_json
from bench.core import build_model
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ, num_frames

TRACE_MAX_S = 5.0  # longest call also run under tracemalloc
log = logging.getLogger("bench.offline")


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def measure(fn: Callable[[], Any], clip_s: float, min_s: float = 1.0,
            max_reps: int = 20) -> dict[str, Any]:
    """Time and memory of `fn`, which processes `clip_s` seconds of audio per call.

    Calls repeat until `min_s` has passed (short clips take milliseconds); the time is the
    mean per call, the RSS peak covers all of them. tracemalloc slows every allocation, so it
    watches one extra call, and only when calls are short (TRACE_MAX_S).
    """
    before = rss_mb()
    wall, cpu, reps = time.perf_counter(), time.process_time(), 0
    while reps < max_reps and (reps == 0 or time.perf_counter() - wall < min_s):
        fn()
        reps += 1
    wall, cpu = (time.perf_counter() - wall) / reps, (time.process_time() - cpu) / reps
    traced = None
    if wall < TRACE_MAX_S:
        tracemalloc.start()
        fn()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    peak = peak_rss_mb()
    return {"clip_s": clip_s, "reps": reps, "call_s": wall, "call_cpu_s": cpu,
            "clip_s_per_s": clip_s / wall, "rss_before_mb": before, "peak_rss_mb": peak,
            "peak_delta_mb": peak - before, "tracemalloc_peak_mb": traced,
            "load_avg": load_avg()}


def inputs(seconds: float, batch: int, n_channels: int) -> tuple[torch.Tensor, ...]:
    """(B, N), (B, N), (B, T, C) float32 tensors of a synthetic conversation."""
    own, other = conversation(seconds, SAMPLE_RATE_HZ)
    n = len(own)
    motion = np.zeros((batch, num_frames(n), n_channels), np.float32)
    return (torch.from_numpy(np.tile(own, (batch, 1))),
            torch.from_numpy(np.tile(other, (batch, 1))), torch.from_numpy(motion))


def worker(kind: str, seconds: float, batch: int, device: str, autocast: str,
           preset: str) -> dict[str, Any]:
    """One measurement point, in this (fresh) process."""
    from dualtalk_core.streaming import process_clip
    from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

    model = build_model(model_source() if preset == "lite" else preset, device, autocast)
    own, other, motion = inputs(seconds, batch, model.n_channels)
    warm = inputs(1.0, 1, model.n_channels)
    if kind == "predict":
        model.predict(warm[0][0].numpy(), warm[1][0].numpy(), warm[2][0].numpy())
        return measure(lambda: model.predict(own[0].numpy(), other[0].numpy(),
                                             motion[0].numpy()), seconds)
    if kind.startswith("process_clip"):
        node = DualTalkNodeSettings().stream  # the node's defaults; naive: a run per frame
        config = dataclasses.replace(node, hop_ms=40.0) if kind.endswith("naive") else node
        # With the partner's face, as a robot with a face tracker has it.
        process_clip(model, warm[0][0].numpy(), warm[1][0].numpy(), warm[2][0].numpy(),
                     config=config)
        return measure(lambda: process_clip(model, own[0].numpy(), other[0].numpy(),
                                            motion[0].numpy(), config=config), seconds)
    return batch_point(model, own, other, motion, seconds, kind == "batch_sequential")


def batch_point(model: Any, own: torch.Tensor, other: torch.Tensor, motion: torch.Tensor,
                seconds: float, sequential: bool) -> dict[str, Any]:
    """B clips in one forward, or the same B clips one forward each."""
    dev, batch = model.device, own.shape[0]

    def run() -> None:
        with torch.inference_mode(), model._autocast():
            if sequential:
                for i in range(batch):
                    model(own[i:i + 1].to(dev), other[i:i + 1].to(dev), motion[i:i + 1].to(dev))
            else:
                model(own.to(dev), other.to(dev), motion.to(dev))
        if dev.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():  # warm-up on one second
        model(own[:1, :SAMPLE_RATE_HZ].to(dev), other[:1, :SAMPLE_RATE_HZ].to(dev),
              motion[:1, :FRAME_RATE_HZ].to(dev))
    return measure(run, seconds * batch)


def points(lengths: list[float], batches: list[int], batch_len: float, device: str,
           autocast: str, preset: str) -> list[dict[str, Any]]:
    """The measurement points of one device and preset, cheapest first."""
    base = {"device": device, "autocast": autocast, "preset": preset}
    pts = [{**base, "kind": k, "seconds": s, "batch": 1}
           for s in lengths for k in ("predict", "process_clip", "process_clip_naive")]
    pts += [{**base, "kind": k, "seconds": batch_len, "batch": b}
            for b in batches for k in ("batch", "batch_sequential")]
    return pts


def run_points(pts: list[dict[str, Any]], tmp: Path, threads: int) -> list[dict[str, Any]]:
    """Each point in its own process; a failed point is kept with its error."""
    rows = []
    for i, pt in enumerate(pts):
        args = ["--worker", pt["kind"], "--seconds", str(pt["seconds"]), "--batch",
                str(pt["batch"]), "--device", pt["device"], "--autocast", pt["autocast"],
                "--preset", pt["preset"]]
        result = run_section("bench.offline", args, tmp / f"point{i}.json", timeout_s=300,
                             env={"OMP_NUM_THREADS": str(threads)})
        rows.append({**pt, "threads": threads, **result})
        log.info("%s %s %.0f s x%d: %s clip-s/s", pt["device"], pt["kind"], pt["seconds"],
                 pt["batch"], f"{result['clip_s_per_s']:.1f}" if "clip_s_per_s" in result
                 else "FAILED")
    return rows


def ratios(rows: list[dict[str, Any]]) -> None:
    """Add each point's naive baseline ratio (baseline time / this time) in place."""
    def find(kind: str, row: dict[str, Any]) -> dict[str, Any] | None:
        return next((r for r in rows if r["kind"] == kind and r["seconds"] == row["seconds"]
                     and r["batch"] == row["batch"] and r["device"] == row["device"]
                     and r["autocast"] == row["autocast"]), None)

    for row in rows:
        base = {"process_clip": "process_clip_naive", "batch": "batch_sequential"}.get(row["kind"])
        other = find(base, row) if base else None
        if other and "clip_s_per_s" in row and "clip_s_per_s" in other:
            row["naive_ratio"] = row["clip_s_per_s"] / other["clip_s_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--lengths-s", type=float, nargs="+", default=[1, 5, 15, 30, 60])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batch-clip-s", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--autocast", default="off", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="lite", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.offline] %(message)s")
    if args.worker:
        write_json(args.out, worker(args.worker, args.seconds, args.batch, args.device,
                                    args.autocast, args.preset))
        return
    pts = points(args.lengths_s, args.batches, args.batch_clip_s, "cpu", "off", "lite")
    if torch.cuda.is_available():  # the official network's offline speed: the H100 target
        pts += [p for p in points([8.0, 30.0], [1, 4], 30.0, "cuda", "bf16", "official")
                if not p["kind"].startswith("process_clip")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_points(pts, Path(tmp), args.threads)
    ratios(rows)
    write_json(args.out, {"rows": rows, "cuda": torch.cuda.is_available()})


if __name__ == "__main__":
    sys.exit(main())
