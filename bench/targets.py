"""The real-time targets, PASS / FAIL per streaming design from the figures of one run.

Nothing here holds a measured value: every number comes from the results dict of the run.
Engine targets read `core.designs` (bench/core.py), node targets `node.runs` (one per design,
bench/node_latency.py); the GPU targets the official network's rows (windowed only: it is
non-causal, so it cannot step incrementally).
"""
from __future__ import annotations

import math
from typing import Any

from bench.designs import DESIGNS
from dualtalk_core.units import FRAME_RATE_HZ
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.fuzzing.fuzz_report import GOALS

RTF_TARGET = 0.02  # engine CPU time per hop / hop, at the node's default config
STEP_P99_MS = 4.0  # one step (a hop's push + step), p99 of wall time
LATENCY_P95_MS = 160.0  # node: receive - frame stamp
JITTER_P99_MS = 10.0  # node: |inter-arrival - 40 ms|
FRAMES_PER_10S = 10 * FRAME_RATE_HZ  # node: output rate
FRAMES_TOLERANCE = 2
GPU_X_REAL_TIME = 33.0  # official network on an H100, offline clip-seconds per second
GPU_HOP_MS = 40.0  # official network on an H100, per hop (p90)
NODE = DualTalkNodeSettings()  # the defaults every figure is measured at
DEFAULT_WINDOW_S = NODE.stream.window_ms / 1000
NO_GPU = "not measured: no GPU in this task"


def _find(rows: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in want.items())), None)


def shown(value: float | None) -> str:
    """A measured value as the tables show it (4 significant digits: 0.1002 is not 0.1)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def _target(name: str, goal: str, value: float | None, ok: bool | None, note: str = "",
            design: str | None = None) -> dict[str, Any]:
    return {"target": name, "goal": goal, "design": design, "measured": value,
            "shown": shown(value),
            "result": {True: "PASS", False: "FAIL", None: "not measured"}[ok], "note": note}


def engine_targets(core: dict[str, Any]) -> list[dict[str, Any]]:
    """Engine RTF (process CPU time) and one step's p99 (wall) for each design."""
    rtf_goal, step_goal = f"<= {RTF_TARGET}", f"<= {STEP_P99_MS:g} ms"
    out = []
    for design in DESIGNS:
        d = core.get("designs", {}).get(design)
        if d is None or "error" in d:
            why = "core section missing" if d is None else "the design's process failed"
            out += [_target("engine RTF (CPU time / hop)", rtf_goal, None, None, why, design),
                    _target("one step p99 (ms)", step_goal, None, None, why, design)]
            continue
        default = " (the node's default design)" if design == "incremental" else ""
        step = d["step_ms"]
        out += [_target("engine RTF (CPU time / hop)", rtf_goal, d["rtf_cpu"],
                        d["rtf_cpu"] <= RTF_TARGET,
                        f"{d['stepper']}{default}, hop {d['hop_ms']:g} ms, "
                        f"{d['torch_threads']} torch thread; process CPU (this thread alone "
                        f"{d['rtf_cpu_thread']:.4f}, wall {d['rtf_wall']:.4f}); load "
                        f"{d['load_avg'][0]}", design),
                _target("one step p99 (ms)", step_goal, step["p99"], step["p99"] <= STEP_P99_MS,
                        f"push + step of one {d['hop_ms']:g} ms hop, wall: p50 "
                        f"{step['p50']:.2f}, p90 {step['p90']:.2f}, max {step['max']:.2f} ms "
                        f"({step['n']} steps); CPU p99 {d['step_cpu_ms']['p99']:.2f} ms",
                        design)]
    return out


def _node_design(run: dict[str, Any] | None, design: str) -> list[dict[str, Any]]:
    latency_goal, jitter_goal = f"<= {LATENCY_P95_MS:g} ms", f"<= {JITTER_P99_MS:g} ms"
    frames_goal = f"{FRAMES_PER_10S} +- {FRAMES_TOLERANCE}"
    names = ("node latency p95 (ms)", "output jitter p99 (ms)", "frames per 10 s")
    if run is None:
        return [_target(n, g, None, None, "no run", design)
                for n, g in zip(names, (latency_goal, jitter_goal, frames_goal))]
    lat, jit, rate = run["latency_ms"]["p95"], run["jitter_ms"]["p99"], run["frames_per_10s"]
    look = run["lookahead_ms"]
    lat_note = (f"output delay {run['output_delay_ms']:g} ms ({run['output_delay_mode']}); "
                f"p50 {run['latency_ms']['p50']:.0f}, p99 {run['latency_ms']['p99']:.0f}")
    if look >= LATENCY_P95_MS:
        lat_note += (f"; lookahead {look:.0f} ms: a frame needs audio that far past its stamp, "
                     "so the goal is out of reach at this lookahead")
    return [_target(names[0], latency_goal, lat, lat <= LATENCY_P95_MS, lat_note, design),
            _target(names[1], jitter_goal, jit, jit <= JITTER_P99_MS,
                    f"p50 {run['jitter_ms']['p50']:.1f}, p95 {run['jitter_ms']['p95']:.1f}",
                    design),
            _target(names[2], frames_goal, rate,
                    abs(rate - FRAMES_PER_10S) <= FRAMES_TOLERANCE,
                    f"{run['frames_received']}/{run['frames_expected']} frames over "
                    f"{run['span_s']:.1f} s", design)]


def node_targets(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Latency p95, jitter p99 and frames per 10 s of the node at its defaults, per design."""
    runs = node.get("runs", [])
    return [t for design in DESIGNS for t in _node_design(_find(runs, design=design), design)]


def gpu_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Official network on an H100: offline speed and per-hop time (bf16 autocast)."""
    gpu = results["machine"].get("gpu")
    speed_goal, hop_goal = f">= {GPU_X_REAL_TIME:.0f}x real time", f"<= {GPU_HOP_MS:.0f} ms"
    speed_name, hop_name = "official on H100, x real time", "official on H100, ms per hop"
    if not gpu:
        return [_target(speed_name, speed_goal, None, None, NO_GPU, "windowed"),
                _target(hop_name, hop_goal, None, None, NO_GPU, "windowed")]
    off = _find(results.get("offline", {}).get("rows", []), device="cuda", preset="official",
                kind="predict", seconds=30.0)
    core = _find(results.get("core", {}).get("rows", []), device="cuda", preset="official",
                 autocast="bf16", window_s=DEFAULT_WINDOW_S)
    h100 = "H100" in gpu
    note = f"{gpu}" + ("" if h100 else ": not an H100, shown for reference")
    speed = off.get("clip_s_per_s") if off else None
    hop = core["engine"]["per_hop_ms_p90"] if core and "engine" in core else None
    return [_target(speed_name, speed_goal, speed,
                    None if speed is None or not h100 else speed >= GPU_X_REAL_TIME,
                    note + "; 30 s clips, bf16, model.predict", "windowed"),
            _target(hop_name, hop_goal, hop,
                    None if hop is None or not h100 else hop <= GPU_HOP_MS,
                    note + f"; {DEFAULT_WINDOW_S:.0f} s window, hop "
                    f"{NODE.stream.hop_ms:.0f} ms, bf16, p90", "windowed")]


# Reliability (issue 24): the fuzz goals are dualtalk-fuzz's own (its JSON says which it met).
FUZZ_GOALS = {"messages": f">= {GOALS['messages']}", "crashes": f"{GOALS['crashes']}",
              "min_rate_fps": f">= {GOALS['min_rate_fps']:g}",
              "jitter_p99_ms": f"<= {GOALS['jitter_p99_ms']:g}",
              "rss_growth_mib": f"<= {GOALS['rss_growth_mib']:g}", "nan": f"{GOALS['nan']}",
              "counters": "ok"}
SHUTDOWN_S = 2.0  # every SIGINT/SIGTERM: exit within this, in every state, under full load
SOAK_RSS_MIB = 20.0  # soak: RSS growth after warm-up
SOAK_DRIFT_MS_PER_MIN = 1.0  # soak: |frame latency slope| once the pipeline delay is removed


def reliability_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The fuzz goals, the soak's memory and drift, the shutdown promise."""
    out = []
    fuzz = results.get("fuzz")
    for name, goal in FUZZ_GOALS.items():
        if not fuzz or "goals" not in fuzz:
            out.append(_target(f"fuzz: {name}", goal, None, None, "no fuzz run"))
            continue
        value = fuzz.get(name)  # counters: ok or bad, shown by the result alone
        value = float(value) if isinstance(value, (int, float)) else None
        out.append(_target(f"fuzz: {name}", goal, value, bool(fuzz["goals"][name]),
                           fuzz["line"] if name == "messages" else ""))
    soak = results.get("soak")
    if soak and "rss_growth_mib" in soak:
        minutes = soak["seconds"] / 60
        drift = soak["paced_residual_slope_ms_per_min"]
        out += [_target("soak: RSS growth (MiB)", f"<= {SOAK_RSS_MIB:g}", soak["rss_growth_mib"],
                        soak["rss_growth_mib"] <= SOAK_RSS_MIB,
                        f"{minutes:.0f} min real-time conversation"),
                _target("soak: frame drift (ms/min)", f"<= {SOAK_DRIFT_MS_PER_MIN:g} either way",
                        drift, abs(drift) <= SOAK_DRIFT_MS_PER_MIN,
                        f"frames {soak['frames_received']}/{soak['frames_expected']}, missing "
                        f"{soak['frames_missing']}, skipped hops {soak['skipped_hops']}")]
    else:
        out.append(_target("soak", "runs", None, None, "no soak run"))
    shutdown = results.get("shutdown", {}).get("summary")
    if shutdown:
        worst = shutdown["exit_s"]["max"]
        startup = shutdown.get("startup_tracebacks", 0)  # before any project code ran
        ok = (worst <= SHUTDOWN_S and shutdown["tracebacks"] == startup
              and not shutdown["killed"])
        out.append(_target("shutdown: slowest exit (s)", f"<= {SHUTDOWN_S:g}", worst, ok,
                           f"{shutdown['cycles']} cycles under full CPU load, p99 "
                           f"{shutdown['exit_s']['p99']:.2f} s, tracebacks "
                           f"{shutdown['tracebacks']} ({startup} in the interpreter's own "
                           f"start-up), killed {shutdown['killed']}"))
    else:
        out.append(_target("shutdown", f"<= {SHUTDOWN_S:g} s", None, None, "no run"))
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [*engine_targets(results.get("core", {})), *node_targets(results.get("node", {})),
            *gpu_targets(results), *reliability_targets(results)]
