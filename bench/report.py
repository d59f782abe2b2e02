"""Targets (pass / fail from the figures of one run) and the markdown report of that run.

Nothing here holds a measured value: every number comes from the results dict of the run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

RTF_TARGET = 0.1  # lite on 2 CPU cores
LATENCY_MARGIN_MS = 60.0  # node latency p95 <= lookahead + this
JITTER_TARGET_MS = 10.0  # output period deviation p99
GPU_X_REAL_TIME = 33.0  # official network on an H100, offline clip-seconds per second
GPU_HOP_MS = 40.0  # official network on an H100, per hop (p90)
NODE = DualTalkNodeSettings()  # the defaults every figure is measured at
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_WINDOW_S = NODE.stream.window_ms / 1000
DEFAULT_HOP_MS = NODE.stream.hop_ms


def node_default_hop_ms() -> float:
    """The node's own default hop (`DualTalkNodeSettings`, where node defaults live)."""
    return DEFAULT_HOP_MS


def measured_config() -> dict[str, Any]:
    """The node settings the headline figures are measured at (printed and stored)."""
    s = NODE.stream
    return {"window_ms": s.window_ms, "hop_ms": s.hop_ms, "lookahead_ms": s.lookahead_ms,
            "crossfade_ms": s.crossfade_ms, "smoothing": s.smoothing.enabled,
            "torch_threads": NODE.torch_threads, "output_delay_ms": NODE.output.delay_ms,
            "model": NODE.model or "default"}


NO_GPU = "not measured: no GPU in this task"


def _find(rows: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in want.items())), None)


def _shown(value: float | None) -> str:
    """A measured value as the tables show it (4 significant digits: 0.1002 is not 0.1)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def _target(name: str, goal: str, value: float | None, ok: bool | None,
            note: str = "") -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": value, "shown": _shown(value),
            "result": {True: "PASS", False: "FAIL", None: "not measured"}[ok], "note": note}


def cpu_target(core: dict[str, Any], cores: int) -> dict[str, Any]:
    """Lite engine, default window and hop, 1 torch thread, wall-time RTF.

    On a machine busier than its cores, wall time also counts other processes' turns; the
    note then says so and what the CPU-time RTF alone would give.
    """
    goal = f"<= {RTF_TARGET}"
    row = _find(core.get("rows", []), preset="lite", device="cpu", threads=NODE.torch_threads,
                window_s=DEFAULT_WINDOW_S)
    if row is None:
        return _target("lite real-time factor, CPU", goal, None, None, "core section missing")
    rtf, rtf_cpu, load = row["engine"]["rtf"], row["engine"]["rtf_cpu"], row["load_avg"][0]
    note = (f"wall time, {DEFAULT_WINDOW_S:.0f} s window, hop {row['engine']['hop_ms']:.0f} "
            f"ms, {NODE.torch_threads} torch thread; CPU-time RTF {rtf_cpu:.3f}; load {load}")
    if load > cores:
        verdict = "PASS" if rtf_cpu <= RTF_TARGET else "FAIL"
        note += f" > {cores} cores: busy machine, wall time inflated (CPU time: {verdict})"
    return _target("lite real-time factor, CPU", goal, rtf, rtf <= RTF_TARGET, note)


def node_targets(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Latency p95 and jitter p99 of the node at its default hop (other hops in the notes)."""
    runs = node.get("runs", [])
    run = _find(runs, hop_ms=node_default_hop_ms())
    if run is None:
        return [_target("node latency p95", "<= lookahead + 60 ms", None, None, "no run"),
                _target("output jitter p99", f"<= {JITTER_TARGET_MS} ms", None, None, "no run")]
    limit = run["lookahead_ms"] + LATENCY_MARGIN_MS
    others = "; ".join(f"hop {r['hop_ms']:.0f} ms: latency p95 {r['latency_ms']['p95']:.0f}, "
                       f"jitter p99 {r['jitter_ms']['p99']:.1f}" for r in runs if r is not run)
    lat, jit = run["latency_ms"]["p95"], run["jitter_ms"]["p99"]
    note = f"hop {run['hop_ms']:.0f} ms (default)" + (f"; {others}" if others else "")
    return [_target("node latency p95 (ms)", f"<= {limit:.0f} ms (lookahead "
                    f"{run['lookahead_ms']:.0f} + {LATENCY_MARGIN_MS:.0f})", lat, lat <= limit,
                    note),
            _target("output jitter p99 (ms)", f"<= {JITTER_TARGET_MS:.0f} ms", jit,
                    jit <= JITTER_TARGET_MS, note)]


def gpu_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Official network on an H100: offline speed and per-hop time (bf16 autocast)."""
    gpu = results["machine"].get("gpu")
    speed_goal, hop_goal = f">= {GPU_X_REAL_TIME:.0f}x real time", f"<= {GPU_HOP_MS:.0f} ms"
    if not gpu:
        return [_target("official on H100, x real time", speed_goal, None, None, NO_GPU),
                _target("official on H100, ms per hop", hop_goal, None, None, NO_GPU)]
    off = _find(results.get("offline", {}).get("rows", []), device="cuda", preset="official",
                kind="predict", seconds=30.0)
    core = _find(results.get("core", {}).get("rows", []), device="cuda", preset="official",
                 autocast="bf16", window_s=DEFAULT_WINDOW_S)
    h100 = "H100" in gpu
    note = f"{gpu}" + ("" if h100 else ": not an H100, shown for reference")
    speed = off.get("clip_s_per_s") if off else None
    hop = core["engine"]["per_hop_ms_p90"] if core and "engine" in core else None
    return [_target("official on H100, x real time", speed_goal, speed,
                    None if speed is None or not h100 else speed >= GPU_X_REAL_TIME,
                    note + "; 30 s clips, bf16, model.predict"),
            _target("official on H100, ms per hop", hop_goal, hop,
                    None if hop is None or not h100 else hop <= GPU_HOP_MS,
                    note + f"; {DEFAULT_WINDOW_S:.0f} s window, hop {DEFAULT_HOP_MS:.0f} ms, "
                    "bf16, p90")]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [cpu_target(results.get("core", {}), results["machine"]["cores"]),
            *node_targets(results.get("node", {})),
            *gpu_targets(results)]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def core_section(core: dict[str, Any]) -> list[str]:
    header = ["preset", "device", "autocast", "threads", "window s", "ms/hop p50", "p90",
              "CPU ms/hop", "RTF", "RTF (CPU)", "naive RTF (hop 40)", "naive / engine",
              "model ms/window", "load 1 min"]
    rows = []
    for r in core.get("rows", []):
        eng, naive, model = r.get("engine"), r.get("naive"), r["model"]
        src = eng or model  # the official CPU rows time the model alone
        rows.append([r["preset"], r["device"], r["autocast"], r["threads"] or "default",
                     _fmt(r["window_s"], 0), _fmt(src["per_hop_ms_p50"]),
                     _fmt(src["per_hop_ms_p90"]), _fmt(src["cpu_ms_mean"]),
                     _fmt(src["rtf"], 3), _fmt(src["rtf_cpu"], 3),
                     _fmt((naive or model)["rtf" if naive else "rtf_naive"], 3),
                     _fmt(r.get("naive_ratio", model["naive_ratio"]), 2),
                     _fmt(model["per_hop_ms_mean"]), r["load_avg"][0]])
    lines = ["## Core: per-hop time and real-time factor", "",
             f"Engine rows: push + step of one hop ({DEFAULT_HOP_MS:.0f} ms, the node's) in "
             "steady state, window full. "
             "Naive: the same engine at hop 40 ms (the whole window recomputed every frame). "
             "Official on the CPU: one `predict` per window (ms/hop = that; naive = one window "
             "per frame). RTF = time per hop / hop.", "", *_table(header, rows)]
    if not core.get("cuda"):
        lines += ["", f"CUDA rows (bf16/fp16 autocast): {NO_GPU}."]
    return lines


def node_section(node: dict[str, Any]) -> list[str]:
    header = ["hop ms", "frames", "latency p50", "p95", "p99", "audio->face p50", "p95", "p99",
              "jitter p50", "p95", "p99", "node CPU RTF", "inference ms", "skipped hops",
              "load 1 min"]
    rows = [[_fmt(r["hop_ms"], 0), f"{r['frames_received']}/{r['frames_expected']}",
             *(_fmt(r["latency_ms"][p], 0) for p in ("p50", "p95", "p99")),
             *(_fmt(r["audio_to_face_ms"][p], 0) for p in ("p50", "p95", "p99")),
             *(_fmt(r["jitter_ms"][p]) for p in ("p50", "p95", "p99")),
             _fmt(r["node_cpu_rtf"], 3), _fmt(r["inference_ms_mean"]), r["skipped_hops"],
             r["load_avg_after"][0]] for r in node.get("runs", [])]
    return ["## Node over DDS (ms)", "",
            "Node, publisher (real-time conversation, 32 ms chunks) and recorder in three "
            "processes on one ROS domain. Latency = receive - stamp; audio->face = receive of "
            "the first frame covering a chunk - that chunk's publish time; jitter = "
            "|inter-arrival - 40 ms|.", "", *_table(header, rows)]


def offline_section(offline: dict[str, Any]) -> list[str]:
    header = ["kind", "device", "clip s", "batch", "clip-s per s", "vs naive", "s per call",
              "peak RSS MB", "peak - before MB", "tracemalloc MB", "load 1 min"]
    rows = []
    for r in offline.get("rows", []):
        if "error" in r:
            rows.append([r["kind"], r["device"], _fmt(r["seconds"], 0), r["batch"], "FAILED",
                         *["-"] * 6])
            continue
        rows.append([r["kind"], r["device"], _fmt(r["seconds"], 0), r["batch"],
                     _fmt(r["clip_s_per_s"]), _fmt(r.get("naive_ratio"), 2),
                     _fmt(r["call_s"], 3), _fmt(r["peak_rss_mb"], 0),
                     _fmt(r["peak_delta_mb"]), _fmt(r["tracemalloc_peak_mb"]),
                     r["load_avg"][0]])
    return ["## Offline throughput and memory", "",
            "`predict`: one whole-clip call; `process_clip`: through the streaming engine "
            "(naive: hop 40 ms); `batch`: B clips in one forward (naive: one forward each). "
            "vs naive = throughput / the baseline's. Each point in a fresh process.", "",
            *_table(header, rows)]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"# DualTalk benchmark {results['date']} on {m['hostname']}", "",
             f"- CPU: {m['cpu_model']}, {m['cores']} cores; GPU: {m['gpu'] or 'none'}",
             f"- Python {m['python']}, torch {m['torch']} (default threads "
             f"{m['torch_threads_default']}), numpy {m['numpy']}",
             f"- model: {m['model']}; commit {results['git']}",
             "- measured at the node's defaults: " + ", ".join(
                 f"{k} {v}" for k, v in results.get("config", measured_config()).items()),
             f"- load average (1, 5, 15 min): start {m['load_avg']}, end "
             f"{results['load_avg_end']}; run took {results['seconds']:.0f} s", "",
             "## Targets", "",
             *_table(["target", "goal", "measured", "result", "note"],
                     [[t["target"], t["goal"], _shown(t["measured"]), t["result"], t["note"]]
                      for t in results["targets"]]), ""]
    for key, section in (("core", core_section), ("node", node_section),
                         ("offline", offline_section)):
        if key in results and "error" not in results[key]:
            lines += [*section(results[key]), ""]
        elif key in results:
            lines += [f"## {key}: FAILED", "", "```", results[key]["error"][-1500:], "```", ""]
    ops = results.get("core", {}).get("profile", {})
    if ops:
        lines += [f"## Profile: lite predict on a {ops['window_s']:.0f} s window "
                  "(torch.profiler, self CPU time)", "",
                  *_table(["op", "ms per run", "share"],
                          [[o["op"], _fmt(o["self_ms_per_run"], 2), f"{100 * o['share']:.0f}%"]
                           for o in ops["ops"]]), ""]
    return "\n".join(lines)


def latest_results(results_dir: Path = RESULTS_DIR) -> Path:
    """The newest results file (named <date>-<machine>.json)."""
    files = sorted(results_dir.glob("[0-9]*.json"))  # <date>-<machine>: not other results
    if not files:
        raise FileNotFoundError(f"no results in {results_dir}: run make bench")
    return files[-1]


def readme_section(results: dict[str, Any], name: str) -> str:
    """The README's performance table: the targets of one results file, with its config."""
    m = results["machine"]
    config = ", ".join(f"{k} {v}" for k, v in results.get("config", measured_config()).items())
    head = (f"Latest run (`bench/results/{name}`): {results['date']}, {m['cpu_model']}, "
            f"{m['cores']} cores, GPU: {m['gpu'] or 'none'}; at the node's defaults "
            f"({config}).")
    rows = [[t["target"], t["goal"], _shown(t["measured"]), t["result"]]
            for t in results["targets"]]
    return "\n".join([head, "", *_table(["target", "goal", "measured", "result"], rows)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the README's performance table")
    parser.add_argument("results", nargs="?", type=Path, help="default: the newest in "
                        "bench/results/")
    args = parser.parse_args(argv)
    path = args.results or latest_results()
    print(readme_section(json.loads(path.read_text()), path.name), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
