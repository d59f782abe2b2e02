"""Core figures: the two streaming designs at the node's defaults, then per-window rows.

`python -m bench.core --out core.json`. First the headline, `designs` (bench/designs.py), each
in its own fresh process (`--design NAME`: its own peak RSS), 1 torch thread and the node's
heap setting: `incremental` (the shipped model at the node's StreamConfig, its default) and
`windowed` (the same model, stepper windowed at hop 80 ms). Each streams
a steady conversation (both voices and the partner's faces pushed every hop, window full from
the start) and times every hop's push + step: engine RTF = process CPU time per hop / hop;
step time distribution (wall ms p50/p90/p99/max); peak RSS of the process (getrusage).
Then, for each device (CPU here; CUDA with bf16 and fp16 autocast when a GPU exists), each
preset and each window (2, 4, 8 s):
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
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import (conversation, load_avg, model_source, percentiles, run_section,
                          timed, write_json)
from bench.designs import DESIGNS, LABELS, design_model, design_stream, model_name
from dualtalk_core.model import PRESETS, DualTalkModel
from dualtalk_core.heap_tuning import keep_freed_memory, tune_heap_for
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


def stream_hops(engine: StreamingEngine, n_hops: int) -> dict[str, Any]:
    """Steady-state cost of `n_hops` engine hops: push a hop of both voices and faces, step.

    The first window (plus two hops) goes in as one chunk and one step, which the engine runs
    in a few long batches: steady state without streaming a whole window hop by hop. Per hop:
    wall, this thread's CPU and the process's CPU seconds, frames emitted; and the model's
    wall time over all hops (`engine.stats`).
    """
    hop_s = engine.config.hop_ms / 1000
    warm = round((engine.config.window_ms / 1000 + engine.lookahead_ms / 1000 + 2 * hop_s)
                 * SAMPLE_RATE_HZ)
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
    out: dict[str, Any] = {"walls": [], "cpus": [], "procs": [], "frames": []}
    before = engine.stats.compute_s
    for start in range(warm, warm + n_hops * step, step):
        proc = time.process_time()
        wall, cpu, frames = timed(lambda: feed(start, start + step))
        out["procs"].append(time.process_time() - proc)
        out["walls"].append(wall)
        out["cpus"].append(cpu)
        out["frames"].append(len(frames))
    out["model_s"] = engine.stats.compute_s - before
    return out


def engine_hops(model: DualTalkModel, window_ms: float, hop_ms: float, n_hops: int,
                device: str) -> dict[str, Any]:
    """Per-hop figures of the engine at `window_ms` and `hop_ms` (see `stream_hops`)."""
    engine = StreamingEngine(model, stream_config(model, window_ms, hop_ms, device))
    raw = stream_hops(engine, n_hops)
    return summarize(raw["walls"], raw["cpus"], hop_ms / 1000, frames=raw["frames"],
                     model_s=raw["model_s"])


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


def rss_mb() -> tuple[float, float]:
    """(peak RSS of this process so far, current RSS), MB: getrusage and /proc."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    status = Path("/proc/self/status").read_text()
    now = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:")) / 1024
    return peak, now


def design_row(design: str, seconds: float) -> dict[str, Any]:
    """One design (bench/designs.py) streaming `seconds` of steady conversation, hop by hop.

    RTF on process CPU time (push + step per hop / hop); step = one hop's push + step, wall
    ms; peak RSS of this (fresh) process, which a design run alone owns.
    """
    torch.set_num_threads(NODE.torch_threads)
    peak_before, _ = rss_mb()
    model = design_model(design)
    engine = StreamingEngine(model, design_stream(design))
    tune_heap_for(engine)  # as the node's pipeline does: the figures are the node's
    hop_ms = engine.config.hop_ms
    raw = stream_hops(engine, round(seconds * 1000 / hop_ms))
    peak, now = rss_mb()
    procs, walls = np.array(raw["procs"]) * 1e3, np.array(raw["walls"]) * 1e3
    return {"design": design, "label": LABELS[design], "model": model_name(design),
            # what actually ran: the engine picks the stepper from the model and config
            "stepper": type(engine._stepper).__name__,
            "stream": dataclasses.asdict(engine.config), "torch_threads": NODE.torch_threads,
            "hop_ms": hop_ms, "lookahead_ms": engine.lookahead_ms, "hops": len(walls),
            "seconds": seconds, "rtf_cpu": float(procs.mean() / hop_ms),
            "rtf_cpu_thread": float(np.mean(raw["cpus"]) * 1e3 / hop_ms),
            "rtf_wall": float(walls.mean() / hop_ms),
            "step_ms": percentiles(walls, (50, 90, 99)),
            "step_cpu_ms": percentiles(procs, (50, 90, 99)),
            "frames_per_hop": float(np.mean(raw["frames"])),
            "model_ms_mean": raw["model_s"] * 1e3 / max(1, len(walls)),
            "peak_rss_mb": peak, "peak_rss_before_model_mb": peak_before, "rss_end_mb": now,
            "load_avg": load_avg()}


def designs(seconds: float, out_dir: Path) -> dict[str, Any]:
    """Each design in its own fresh process (`--design`): its own peak RSS and allocator."""
    out = {}
    for design in DESIGNS:
        out[design] = run_section("bench.core", ["--design", design, "--design-seconds",
                                                 f"{seconds:g}"],
                                  out_dir / f"{design}.json", 300)
        if "error" not in out[design]:
            log.info("%s: engine RTF %.4f (CPU), step p99 %.2f ms, peak RSS %.0f MB", design,
                     out[design]["rtf_cpu"], out[design]["step_ms"]["p99"],
                     out[design]["peak_rss_mb"])
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--design", choices=DESIGNS, help="only this design's row (used by "
                        "the run itself, one fresh process per design)")
    parser.add_argument("--design-seconds", type=float, default=60.0,
                        help="steady stream timed per design")
    parser.add_argument("--windows-s", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch CPU threads for the lite rows")
    parser.add_argument("--official-threads", type=int, default=1)
    parser.add_argument("--hops", type=int, default=40, help="timed hops per lite row")
    parser.add_argument("--official-reps", type=int, default=2)
    parser.add_argument("--skip-official-cpu", action="store_true")
    return parser.parse_args()


def window_rows(args: argparse.Namespace, source: str) -> list[dict[str, Any]]:
    """Lite per window and thread count, official on the CPU, both on CUDA when present."""
    windows = [w * 1000 for w in args.windows_s]
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
    return rows


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.core] %(message)s")
    if args.design:
        write_json(args.out, design_row(args.design, args.design_seconds))
        return
    keep_freed_memory()  # every row below runs windows, as the node's windowed stepper does
    source, started = model_source(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result: dict[str, Any] = {"designs": designs(args.design_seconds, Path(tmp))}
    result["rows"] = window_rows(args, source)
    torch.set_num_threads(1)
    profile_window = max(args.windows_s) * 1000
    result.update(cuda=torch.cuda.is_available(),
                  profile={"window_s": profile_window / 1000,
                           "ops": op_profile(source, profile_window)},
                  seconds=time.perf_counter() - started)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
