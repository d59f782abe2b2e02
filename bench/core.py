"""Core figures: per-hop inference time and real-time factor of the presets, by window length.

`python -m bench.core --out core.json [--quick]`. For each device (CPU here; CUDA with bf16 and
fp16 autocast when a GPU exists), each preset and each window (2, 4, 8 s):
- `engine`: the StreamingEngine in steady state (window already full) fed one hop of audio
  and faces per step, timing push + step; RTF = mean time per hop / hop. Its naive baseline is
  the same engine at hop 40 ms, i.e. the whole window recomputed for every frame; the ratio is
  naive RTF / engine RTF (how much the hop reuse saves).
- `model`: one `model.predict` of a full window (what each hop costs in the network alone);
  used for the official preset on the CPU, where streaming a window full takes minutes.
Weights are random (or the shipped default model's): the cost does not depend on them.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from typing import Any

import numpy as np
import torch

from bench.common import conversation, load_avg, model_source, timed, write_json
from dualtalk_core.model import PRESETS, DualTalkModel
from dualtalk_core.heap_tuning import keep_freed_memory
from dualtalk_core.streaming import StreamConfig, StreamingEngine
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ, num_frames
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

NODE = DualTalkNodeSettings()  # what the node runs: every figure here is at its defaults
DEFAULT_HOP_MS = NODE.stream.hop_ms
NAIVE_HOP_MS = 40.0  # one model run per frame
OFFICIAL_LOOKAHEAD_MS = 200.0  # the official network is non-causal: the engine enforces this

log = logging.getLogger("bench.core")


def build_model(source: str, device: str, autocast: str = "off") -> DualTalkModel:
    """The model to time: a saved model folder, or a preset with small uniform weights (the
    official preset's random initialisation takes ~20 s and changes nothing timed here)."""
    runtime = {"device": device, "cuda_autocast": autocast}
    if source not in PRESETS:
        return DualTalkModel.load(source, **runtime).eval()
    return DualTalkModel.from_preset(source, fast_init=True, **runtime).eval()


def stream_config(model: DualTalkModel, window_ms: float, hop_ms: float,
                  device: str) -> StreamConfig:
    lookahead = None if model.lookahead_ms is not None else OFFICIAL_LOOKAHEAD_MS
    return dataclasses.replace(NODE.stream, window_ms=window_ms, hop_ms=hop_ms,
                               lookahead_ms=-1.0 if lookahead is None else lookahead)


def engine_hops(model: DualTalkModel, window_ms: float, hop_ms: float, n_hops: int,
                device: str) -> dict[str, Any]:
    """Steady-state cost of one engine hop: push a hop of both voices and faces, then step.

    The first window (plus two hops) goes in as one chunk and one step, which the engine runs
    in a few long batches: steady state without streaming a whole window hop by hop.
    """
    engine = StreamingEngine(model, stream_config(model, window_ms, hop_ms, device))
    hop_s = hop_ms / 1000
    warm = round((window_ms / 1000 + engine.lookahead_ms / 1000 + 2 * hop_s) * SAMPLE_RATE_HZ)
    step = round(hop_s * SAMPLE_RATE_HZ)
    own, other = conversation((warm + (n_hops + 1) * step) / SAMPLE_RATE_HZ, SAMPLE_RATE_HZ)
    names, face = list(engine.rig.names), engine.rig.neutral_array()

    def feed(start: int, stop: int) -> list:
        engine.push_self_audio(own[start:stop], SAMPLE_RATE_HZ, start / SAMPLE_RATE_HZ)
        engine.push_partner_audio(other[start:stop], SAMPLE_RATE_HZ, start / SAMPLE_RATE_HZ)
        for k in range(-(-start * FRAME_RATE_HZ // SAMPLE_RATE_HZ),
                       -(-stop * FRAME_RATE_HZ // SAMPLE_RATE_HZ)):
            engine.push_partner_face(face, names, k / FRAME_RATE_HZ)
        return engine.step()

    feed(0, warm)
    walls, cpus, frames = [], [], []
    before = engine.stats.compute_s
    for start in range(warm, warm + n_hops * step, step):
        wall, cpu, out = timed(lambda: feed(start, start + step))
        walls.append(wall)
        cpus.append(cpu)
        frames.append(len(out))
    model_s = engine.stats.compute_s - before
    return summarize(walls, cpus, hop_s, frames=frames, model_s=model_s)


def summarize(walls: list[float], cpus: list[float], hop_s: float,
              **extra: Any) -> dict[str, Any]:
    """Per-hop milliseconds (p50/p90 wall, mean CPU) and real-time factors from them."""
    walls_ms, cpus_ms = np.array(walls) * 1e3, np.array(cpus) * 1e3
    out = {"hops": len(walls), "hop_ms": hop_s * 1e3,
           "per_hop_ms_p50": float(np.median(walls_ms)),
           "per_hop_ms_p90": float(np.percentile(walls_ms, 90)),
           "per_hop_ms_mean": float(walls_ms.mean()), "cpu_ms_mean": float(cpus_ms.mean()),
           "rtf": float(walls_ms.mean() / (hop_s * 1e3)),
           "rtf_cpu": float(cpus_ms.mean() / (hop_s * 1e3))}
    if "frames" in extra:
        out["frames_per_hop"] = float(np.mean(extra["frames"]))
        out["model_ms_mean"] = extra["model_s"] * 1e3 / max(1, len(walls))
    return out


def model_windows(model: DualTalkModel, window_ms: float, reps: int) -> dict[str, Any]:
    """Cost of one full-window predict (a warm-up call first); RTF at the default hop."""
    n = round(window_ms * SAMPLE_RATE_HZ / 1000)
    own, other = conversation(window_ms / 1000, SAMPLE_RATE_HZ)
    motion = np.zeros((num_frames(n), model.n_channels), np.float32)
    model.predict(own[:n], other[:n], motion)  # warm-up: allocations, kernels, caches
    walls, cpus = [], []
    for _ in range(reps):
        wall, cpu, _ = timed(lambda: model.predict(own[:n], other[:n], motion))
        walls.append(wall)
        cpus.append(cpu)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    out = summarize(walls, cpus, DEFAULT_HOP_MS / 1000)
    out["x_real_time_window"] = window_ms / 1000 / out["per_hop_ms_mean"] * 1e3
    out["rtf_naive"] = out["per_hop_ms_mean"] / NAIVE_HOP_MS  # one window per frame
    out["naive_ratio"] = out["rtf_naive"] / out["rtf"]
    return out


def lite_rows(source: str, device: str, autocast: str, threads: int, windows: list[float],
              n_hops: int) -> list[dict[str, Any]]:
    """Engine at the default hop and at 40 ms, and the model alone, for each window."""
    model = build_model(source, device, autocast)
    rows = []
    for window_ms in windows:
        row = {"preset": "lite", "source": source, "device": device, "autocast": autocast,
               "threads": threads, "window_s": window_ms / 1000, "load_avg": load_avg()}
        row["engine"] = engine_hops(model, window_ms, DEFAULT_HOP_MS, n_hops, device)
        row["naive"] = engine_hops(model, window_ms, NAIVE_HOP_MS, n_hops, device)
        row["naive_ratio"] = row["naive"]["rtf"] / row["engine"]["rtf"]
        row["model"] = model_windows(model, window_ms, reps=max(3, n_hops // 4))
        rows.append(row)
        log.info("lite %s x%d %.0f s: engine rtf %.3f (naive %.3f)", device, threads,
                 window_ms / 1000, row["engine"]["rtf"], row["naive"]["rtf"])
    return rows


def official_rows(device: str, autocast: str, threads: int, windows: list[float],
                  reps: int, n_hops: int) -> list[dict[str, Any]]:
    """The model per window everywhere; on CUDA also the engine (fast enough to stream)."""
    model = build_model("official", device, autocast)
    rows = []
    for window_ms in windows:
        row = {"preset": "official", "source": "official", "device": device,
               "autocast": autocast, "threads": threads, "window_s": window_ms / 1000,
               "load_avg": load_avg(), "model": model_windows(model, window_ms, reps)}
        if device == "cuda":
            row["engine"] = engine_hops(model, window_ms, DEFAULT_HOP_MS, n_hops, device)
            row["naive"] = engine_hops(model, window_ms, NAIVE_HOP_MS, n_hops, device)
            row["naive_ratio"] = row["naive"]["rtf"] / row["engine"]["rtf"]
        rows.append(row)
        log.info("official %s %s %.0f s: %.0f ms per window", device, autocast,
                 window_ms / 1000, row["model"]["per_hop_ms_mean"])
    return rows


def op_profile(source: str, window_ms: float, runs: int = 10) -> list[dict[str, Any]]:
    """torch.profiler's top operators (self CPU time) of lite predicts on one window."""
    from torch.profiler import ProfilerActivity, profile

    model = build_model(source, "cpu")
    n = round(window_ms * SAMPLE_RATE_HZ / 1000)
    own, other = conversation(window_ms / 1000, SAMPLE_RATE_HZ)
    motion = np.zeros((num_frames(n), model.n_channels), np.float32)
    model.predict(own, other, motion)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            model.predict(own, other, motion)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "self_ms_per_run": e.self_cpu_time_total / 1e3 / runs,
             "share": e.self_cpu_time_total / total} for e in events[:10]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--windows-s", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch CPU threads for the lite rows")
    parser.add_argument("--official-threads", type=int, default=1)
    parser.add_argument("--hops", type=int, default=40, help="timed hops per lite row")
    parser.add_argument("--official-reps", type=int, default=2)
    parser.add_argument("--skip-official-cpu", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.core] %(message)s")
    keep_freed_memory()  # as the node's main() does: the engine figures are the node's
    windows = [w * 1000 for w in args.windows_s]
    source, started = model_source(), time.perf_counter()
    rows: list[dict[str, Any]] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows += lite_rows(source, "cpu", "off", threads, windows, args.hops)
    torch.set_num_threads(args.official_threads)
    if not args.skip_official_cpu:
        rows += official_rows("cpu", "off", args.official_threads, windows,
                              args.official_reps, 0)
    if torch.cuda.is_available():
        for autocast in ("bf16", "fp16"):
            rows += lite_rows(source, "cuda", autocast, 0, windows, args.hops)
            rows += official_rows("cuda", autocast, 0, windows, 10, args.hops)
    torch.set_num_threads(1)
    profile_window = max(windows)
    result = {"rows": rows, "cuda": torch.cuda.is_available(),
              "profile": {"window_s": profile_window / 1000,
                          "ops": op_profile(source, profile_window)},
              "seconds": time.perf_counter() - started}
    write_json(args.out, result)


if __name__ == "__main__":
    main()
