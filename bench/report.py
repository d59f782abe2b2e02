"""The markdown report of one run, and the README's performance table (`python -m bench.report`).

Nothing here holds a measured value: every number comes from the results dict of the run. The
targets (PASS / FAIL per design) are `bench.targets`; the latency histogram is
`bench.latency_plot`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench.designs import DESIGNS
from bench.targets import NO_GPU, NODE, shown, targets
from dualtalk_core.evaluation.lookahead_curve import table

__all__ = ["latest_results", "markdown", "measured_config", "readme_section", "targets"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_WINDOW_S = NODE.stream.window_ms / 1000
DEFAULT_HOP_MS = NODE.stream.hop_ms


def measured_config() -> dict[str, Any]:
    """The node settings the headline figures are measured at (printed and stored)."""
    s = NODE.stream
    return {"window_ms": s.window_ms, "hop_ms": s.hop_ms, "lookahead_ms": s.lookahead_ms,
            "crossfade_ms": s.crossfade_ms, "smoothing": s.smoothing.enabled,
            "stepper": s.stepper, "torch_threads": NODE.torch_threads,
            "output_delay_ms": NODE.output.delay_ms, "model": NODE.model or "default"}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def _cells(rows: list[tuple[str, Any]], per_design: dict[str, dict[str, Any]]) -> list[list]:
    """[metric, value per design]: `rows` holds (metric, function of one design's dict)."""
    return [[name, *(fn(per_design[d]) if d in per_design else "-" for d in DESIGNS)]
            for name, fn in rows]


def _ms(stats: dict[str, float], keys: tuple[str, ...], digits: int = 1) -> str:
    return " / ".join(_fmt(stats.get(k), digits) for k in keys)


ENGINE_ROWS: list[tuple[str, Any]] = [
    ("model", lambda d: d["model"]), ("stepper", lambda d: d["stepper"]),
    ("hop ms", lambda d: _fmt(d["hop_ms"], 0)),
    ("engine RTF (process CPU / hop)", lambda d: shown(d["rtf_cpu"])),
    ("RTF (this thread's CPU / wall)",
     lambda d: f"{shown(d['rtf_cpu_thread'])} / {shown(d['rtf_wall'])}"),
    ("step ms, wall p50 / p90 / p99 / max",
     lambda d: _ms(d["step_ms"], ("p50", "p90", "p99", "max"), 2)),
    ("step ms, CPU p50 / p99", lambda d: _ms(d["step_cpu_ms"], ("p50", "p99"), 2)),
    ("model ms per step (mean)", lambda d: _fmt(d["model_ms_mean"], 2)),
    ("frames per step", lambda d: _fmt(d["frames_per_hop"], 2)),
    ("peak RSS MB (before the model)",
     lambda d: f"{_fmt(d['peak_rss_mb'], 0)} ({_fmt(d['peak_rss_before_model_mb'], 0)})"),
    ("RSS at the end MB", lambda d: _fmt(d["rss_end_mb"], 0)),
    ("steps timed (stream s)", lambda d: f"{d['hops']} ({_fmt(d['seconds'], 0)})"),
    ("load 1 min", lambda d: d["load_avg"][0])]

NODE_ROWS: list[tuple[str, Any]] = [
    ("node parameters", lambda r: " ".join(r["params"]) or "none (defaults)"),
    ("latency ms p50 / p95 / p99 / max",
     lambda r: _ms(r["latency_ms"], ("p50", "p95", "p99", "max"))),
    ("audio->face ms p50 / p95 / p99",
     lambda r: _ms(r["audio_to_face_ms"], ("p50", "p95", "p99"))),
    ("jitter ms p50 / p95 / p99 / max",
     lambda r: _ms(r["jitter_ms"], ("p50", "p95", "p99", "max"))),
    ("frames received / expected", lambda r: f"{r['frames_received']}/{r['frames_expected']}"),
    ("frames per 10 s", lambda r: _fmt(r["frames_per_10s"], 2)),
    ("output delay ms (last /diagnostics while streaming)",
     lambda r: f"{_fmt(r['output_delay_ms'], 0)} ({r['output_delay_mode']})"),
    ("output delay ms after the stream ended", lambda r: _fmt(r["output_delay_ms_after_end"], 0)),
    ("node's frame latency ms p50 / p99 (ready - stamp)",
     lambda r: f"{_fmt(r['node_latency_p50_ms'])} / {_fmt(r['node_latency_p99_ms'])}"),
    ("node CPU RTF (CPU s per stream s)", lambda r: _fmt(r["node_cpu_rtf"], 3)),
    ("inference ms per step (mean)", lambda r: _fmt(r["inference_ms_mean"])),
    ("skipped hops / gaps filled", lambda r: f"{r['skipped_hops']} / {r['gaps_filled']}"),
    ("load 1 min after", lambda r: r["load_avg_after"][0])]


def designs_section(results: dict[str, Any]) -> list[str]:
    """Windowed vs incremental, engine and node, side by side."""
    engine = {k: v for k, v in results.get("core", {}).get("designs", {}).items()
              if "error" not in v}
    node = {r["design"]: r for r in results.get("node", {}).get("runs", []) if "design" in r}
    labels = {d: (engine.get(d) or node.get(d) or {}).get("label", "") for d in DESIGNS}
    header = ["", *(f"{d}: {labels[d]}" for d in DESIGNS)]
    lines = ["## Designs side by side", "",
             "Engine: each design in its own process, 1 torch thread, the node's heap setting, "
             "a steady conversation (both voices and the partner's faces pushed every hop); one "
             "step = one hop's push + step. Node: the real node process at its defaults over "
             "DDS (receive - stamp; jitter = |inter-arrival - 40 ms|; frames per 10 s = "
             "(frames - 1) / (last - first arrival) x 10 s).", ""]
    if engine:
        lines += ["### Engine", "", *_table(header, _cells(ENGINE_ROWS, engine)), ""]
    if node:
        lines += ["### Node over DDS", "", *_table(header, _cells(NODE_ROWS, node)), ""]
    if results.get("latency_plot"):
        lines += [f"![node latency histogram]({results['latency_plot']})", ""]
    return lines


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
    lines = ["## Core: per-hop time and real-time factor by window (windowed stepper)", "",
             f"Engine rows: push + step of one hop ({DEFAULT_HOP_MS:.0f} ms, the node's) in "
             "steady state, window full. "
             "Naive: the same engine at hop 40 ms (the whole window recomputed every frame). "
             "Official on the CPU: one `predict` per window (ms/hop = that; naive = one window "
             "per frame). RTF = time per hop / hop.", "", *_table(header, rows)]
    if not core.get("cuda"):
        lines += ["", f"CUDA rows (bf16/fp16 autocast): {NO_GPU}."]
    return lines


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
             *_table(["target", "design", "goal", "measured", "result", "note"],
                     [[t["target"], t.get("design") or "-", t["goal"], shown(t["measured"]),
                       t["result"], t["note"]] for t in results["targets"]]), "",
             *designs_section(results)]
    for key, section in (("core", core_section), ("offline", offline_section)):
        if key in results and "error" not in results[key]:
            lines += [*section(results[key]), ""]
    lines += reliability_section(results)
    curve = results.get("lookahead_curve", {})
    if "curve" in curve:
        lines += ["## Quality against lookahead (the shipped recipe, stage 1)", "",
                  f"Measured once, not by this run: `{curve['source']}` (see the model card). "
                  "FD and MSE per group on each split, 95 % bootstrap intervals.", "",
                  table(curve["curve"]), ""]
    if "rooms" in results.get("echo", {}):
        lines += [*echo_section(results["echo"]), ""]
    for key in ("core", "node", "offline", "ros", "fuzz", "soak", "shutdown", "echo"):
        if "error" in results.get(key, {}):
            lines += [f"## {key}: FAILED", "", "```", results[key]["error"][-1500:], "```", ""]
    ops = results.get("core", {}).get("profile", {})
    if ops:
        lines += [f"## Profile: lite predict on a {ops['window_s']:.0f} s window "
                  "(torch.profiler, self CPU time)", "",
                  *_table(["op", "ms per run", "share"],
                          [[o["op"], _fmt(o["self_ms_per_run"], 2), f"{100 * o['share']:.0f}%"]
                           for o in ops["ops"]]), ""]
    return "\n".join(lines)


def echo_section(echo: dict[str, Any]) -> list[str]:
    """Echo cancellation (bench/echo.py): the canceller per room, then the face's reaction."""
    def face(d: dict[str, Any], key: str, turn: str) -> str:
        return f"{d[key][turn]['blendshapes']:.4f} / {d[key][turn]['head_pose_rad']:.5f}"

    rows, face_rows = [], []
    for name, r in echo["rooms"].items():
        room = r["room"]
        alone, both = (f"{_fmt(r[k + '_err_db'], 2)} ({_fmt(r[k + '_gain_db'], 2)})"
                       for k in ("partner_alone", "double_talk"))
        rows.append([name, f"{room['delay_ms']:g} / {room['rt60_ms']:g} / {room['gain_db']:g}"
                     f" / {room['nonlinearity']:g}", _fmt(r["echo_to_partner_db"]),
                     _fmt(r["erle_db"]), _fmt(r["cpu_ms_per_10ms"], 3), alone, both,
                     _fmt(r["double_talk_err_db_no_aec"], 2)])
        for partner_face, d in r["faces"].items():
            face_rows += [[name, partner_face.replace("_", " "), turn.replace("_", " "),
                           *(face(d, k, turn) for k in ("leak_aec_off", "leak_aec_on",
                                                        "aec_cost", "partner_voice"))]
                          for turn in ("own_turns", "partner_turns")]
    return ["## Echo cancellation (stream.echo_cancellation)", "",
            f"Clip {echo['clip']} ({echo['seconds']:.1f} s; the robot is speaker 1), the "
            "partner microphone = the partner + a simulated room echo of the robot. ERLE after "
            "2 s; partner distortion = mean |mel-band level difference| (mean difference) in dB "
            "against the clean partner, where only the partner speaks and where both do.", "",
            *_table(["room", "delay ms / RT60 ms / gain dB / clipping", "echo / partner dB",
                     "ERLE dB", "CPU ms per 10 ms", "partner alone", "double talk",
                     "double talk, no AEC"], rows), "",
            "The shipped model at the node's StreamConfig (`process_clip`): mean |difference| "
            "of the 52 blendshapes / the head pose (rad). leak = faces(echo) - faces(clean mic) "
            "with cancellation off, then on; AEC cost = clean mic with - without cancellation; "
            "partner voice = clean mic - silent mic (the scale of a real reaction). A neutral "
            "partner face makes the network ignore the partner's audio altogether.", "",
            *_table(["room", "partner face", "frames", "leak, AEC off", "leak, AEC on",
                     "AEC cost", "partner voice"], face_rows)]


def reliability_section(results: dict[str, Any]) -> list[str]:
    """The fuzz line, the soak, the shutdown loop and the ROS timing checks, as measured."""
    lines = []
    fuzz = results.get("fuzz", {})
    if "line" in fuzz:
        lines += [f"- hostile stream ({fuzz['seconds']:.0f} s, seed {fuzz['seed']}): "
                  f"`{fuzz['line']}`"]
    soak = results.get("soak", {})
    if "frames_received" in soak:
        lines += [f"- soak ({soak['seconds'] / 60:.0f} min real-time conversation): frames "
                  f"{soak['frames_received']}/{soak['frames_expected']} (missing "
                  f"{soak['frames_missing']}), stamps off the 40 ms grid by at most "
                  f"{soak['stamp_off_grid_max_us']:.1f} us, latency drift "
                  f"{soak['paced_residual_slope_ms_per_min']:.2f} ms/min once the pipeline "
                  f"delay is removed, RSS growth {soak['rss_growth_mib']} MiB, skipped hops "
                  f"{soak['skipped_hops']}"]
    summary = results.get("shutdown", {}).get("summary")
    if summary:
        e = summary["exit_s"]
        lines += [f"- shutdown ({summary['cycles']} SIGINT/SIGTERM at random points, full CPU "
                  f"load): exit p50 {e['p50']:.2f} s, p99 {e['p99']:.2f} s, max "
                  f"{e['max']:.2f} s; non-zero exits {summary['nonzero_exits']} (signals "
                  f"during imports: 130/143), tracebacks {summary['tracebacks']} "
                  f"({summary.get('startup_tracebacks', 0)} in the interpreter's own start-up, "
                  f"before any project code), killed {summary['killed']}"]
    mic = results.get("ros", {}).get("mic", {})
    if "stamp_error_abs_max_ms" in mic:
        lines += [f"- microphone stamps: |error| max {_fmt(mic['stamp_error_abs_max_ms'], 1)} "
                  f"ms, stamps not increasing {mic['stamps_not_increasing']}"]
    return ["## Reliability", "", *lines, ""] if lines else []


def latest_results(results_dir: Path = RESULTS_DIR) -> Path:
    """The newest results file (<date>-<machine>[-n].json): by date, then finishing time."""
    files = results_dir.glob("[0-9]*.json")  # <date>-<machine>: not other results

    def when(path: Path) -> tuple[str, str, str]:
        results = json.loads(path.read_text())
        return results["date"], results.get("finished", ""), path.name

    newest = max(files, key=when, default=None)
    if newest is None:
        raise FileNotFoundError(f"no results in {results_dir}: run make bench")
    return newest


def _design_cell(t: dict[str, Any] | None) -> str:
    if t is None:
        return "n/a"
    return t["note"] if t["measured"] is None else f"{t['shown']} {t['result']}"


def _designs_note(results: dict[str, Any]) -> str:
    """Which model and hop each design's engine rows ran at (from the results)."""
    rows = results.get("core", {}).get("designs", {})
    parts = [f"{d} = {rows[d]['label']}, engine hop {rows[d]['hop_ms']:g} ms" for d in DESIGNS
             if "label" in rows.get(d, {})]
    return (" Designs: " + "; ".join(parts) + "; node rows: the node's defaults (windowed: + "
            "`stream.stepper:=windowed stream.hop_ms:=80.0`). GPU rows: the official network, "
            "windowed only." if parts else "")


def readme_section(results: dict[str, Any], name: str) -> str:
    """The README's performance table: the targets of one results file, with its config."""
    m = results["machine"]
    config = ", ".join(f"{k} {v}" for k, v in results.get("config", measured_config()).items())
    head = (f"Latest run (`bench/results/{name}`): {results['date']}, {m['cpu_model']}, "
            f"{m['cores']} cores, GPU: {m['gpu'] or 'none'}; at the node's defaults "
            f"({config}).")
    ts = results["targets"]
    if not any("design" in t for t in ts):  # results written before the two designs
        rows = [[t["target"], t["goal"], shown(t["measured"]), t["result"]] for t in ts]
        return "\n".join([head, "", *_table(["target", "goal", "measured", "result"],
                                            rows)]) + "\n"
    per_design = [t for t in ts if t.get("design") in DESIGNS]
    keys = list(dict.fromkeys((t["target"], t["goal"]) for t in per_design))
    by = {(t["target"], t["goal"], t["design"]): t for t in per_design}
    rows = [[name_, goal, *(_design_cell(by.get((name_, goal, d))) for d in DESIGNS)]
            for name_, goal in keys]
    lines = [head + _designs_note(results), "", *_table(["target", "goal", *DESIGNS], rows)]
    node_wide = [t for t in ts if t.get("design") not in DESIGNS]
    if node_wide:  # reliability: the node at its defaults, whatever its design
        lines += ["", *_table(["reliability", "goal", "measured", "result"],
                              [[t["target"], t["goal"], t["shown"], t["result"]]
                               for t in node_wide])]
    return "\n".join(lines) + "\n"


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
