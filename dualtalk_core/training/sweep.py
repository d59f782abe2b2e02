"""`dualtalk-sweep`: train one config with several seeds, score each, report the spread.

One training run is one draw: on the synthetic corpus two seeds of the same recipe can land on
either side of a baseline in a close cell (FD EXP on `ood` has). A claim about a recipe, such as
"ahead of every baseline", is a claim about all its draws, so this trains the config once per
seed (`dualtalk-train --seed`, several at a time, one torch thread each), scores each run's
validation-picked checkpoint (OUT/seed<S>/best) with `dualtalk-eval --baselines` on the given
splits, and writes, in `--out`:
- `seed<S>/`: the run (checkpoints, TensorBoard, history) and `eval_<split>/` per split;
- `summary.json`: per split, every seed's model cells and verdict, the baselines' values (the
  same for every seed), and per cell the mean, standard deviation, and how many seeds lead;
- `summary.md`: the same as tables.
A run whose history already holds every epoch is not trained again; an unfinished one resumes.
Stopping the sweep (Ctrl-C, SIGTERM) stops the trainings it started.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core import config_files as config_io
from dualtalk_core.evaluation import metrics
from dualtalk_core.evaluation.eval_cli import write_outputs
from dualtalk_core.evaluation.scoring import LABELS, MODEL_KEY, evaluate_model
from dualtalk_core.evaluation.tables import fmt_scale, fmt_value
from dualtalk_core.evaluation.verdict import ABLATION_KEY, verdict
from dualtalk_core.model import DualTalkModel
from dualtalk_core.rigs import GROUPS
from dualtalk_core.child_processes import stop_all
from dualtalk_core.training.train_config import TrainConfig

log = logging.getLogger(__name__)

CELL_METRICS: tuple[str, ...] = ("FD", "MSE", "P-FD", "rPCC")
STOP_TIMEOUT_S = 10.0  # how long stopped trainings get to exit before they are killed


def _finished_epochs(run_dir: Path) -> int:
    history = run_dir / "history.jsonl"
    if not history.is_file():
        return 0
    epochs = [json.loads(line).get("epoch", 0) for line in history.open() if line.strip()]
    return max(epochs, default=0)


def _train_command(config: Path, data: Path, run_dir: Path, seed: int, device: str) -> list[str]:
    cmd = [sys.executable, "-m", "dualtalk_core.training.trainer", "--config", str(config),
           "--data", str(data), "--out", str(run_dir), "--seed", str(seed), "--device", device]
    if (run_dir / "last" / "train_state.safetensors").is_file():
        cmd.append("--resume")
    return cmd


def train_seeds(config: Path, data: Path, out: Path, seeds: list[int], jobs: int,
                threads: int, device: str) -> None:
    """Run every unfinished seed, at most `jobs` at a time; raise if any run fails."""
    epochs = config_io.load(TrainConfig, config).epochs
    todo = [s for s in seeds if _finished_epochs(out / f"seed{s}") < epochs]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    running: list[tuple[int, subprocess.Popen, Any]] = []
    failed = []
    try:
        while todo or running:
            while todo and len(running) < jobs:
                seed = todo.pop(0)
                run_dir = out / f"seed{seed}"
                run_dir.mkdir(parents=True, exist_ok=True)
                log_file = open(run_dir / "train.log", "a")
                cmd = _train_command(config, data, run_dir, seed, device)
                log.info("seed %d: %s (log: %s)", seed, " ".join(cmd), run_dir / "train.log")
                running.append((seed, subprocess.Popen(cmd, env=env, stdout=log_file,
                                                       stderr=subprocess.STDOUT), log_file))
            time.sleep(1.0)
            for item in [r for r in running if r[1].poll() is not None]:
                seed, proc, log_file = item
                log_file.close()
                running.remove(item)
                if proc.returncode != 0:
                    failed.append(seed)
                log.info("seed %d: training exited with %d", seed, proc.returncode)
    finally:
        _stop_runs(running)
    if failed:
        raise RuntimeError(f"training failed for seeds {failed}; see {out}/seed<S>/train.log")


def _stop_runs(running: list[tuple[int, subprocess.Popen, Any]]) -> None:
    """Stop trainings still running when the sweep ends early (an error, Ctrl-C, a SIGTERM
    from a job scheduler), so none is left training unseen. Each resumes from
    OUT/seed<S>/last on the next sweep."""
    for seed, proc, _ in running:
        if proc.poll() is None:
            log.warning("seed %d: stopping its training (pid %d)", seed, proc.pid)
    stop_all([proc for _, proc, _ in running], signal.SIGTERM, STOP_TIMEOUT_S)
    for _, _, log_file in running:
        log_file.close()


def score_seeds(data: Path, out: Path, seeds: list[int], splits: list[str],
                device: str) -> dict[str, dict[int, dict[str, Any]]]:
    """dualtalk-eval --baselines of every seed's OUT/seed<S>/best on every split."""
    scores: dict[str, dict[int, dict[str, Any]]] = {split: {} for split in splits}
    for seed in seeds:
        best = out / f"seed{seed}" / "best"
        if not (best / "model.safetensors").is_file():
            raise FileNotFoundError(f"{best}: no validation-picked checkpoint (is val_split set "
                                    "in the config?)")
        model = DualTalkModel.load(best, device=device)
        for split in splits:
            results = evaluate_model(model, data, split, baselines=True, progress=False)
            write_outputs(results, out / f"seed{seed}" / f"eval_{split}")
            scores[split][seed] = results
    return scores


def summarize(scores: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Per split: every seed's verdict, and per cell mean/sd/min/max of the model's value
    (seeds where a value is undefined, an rPCC of a constant output, are left out of it) and
    each baseline's mean over seeds (the speaker-only ablation differs per seed; the DIM
    baselines do not)."""
    summary: dict[str, Any] = {}
    for split, by_seed in scores.items():
        seeds = sorted(by_seed)
        verdicts = {s: verdict(by_seed[s]) for s in seeds}
        first = by_seed[seeds[0]]["methods"]
        cells = {}
        for metric in CELL_METRICS:
            for g in GROUPS:
                values = [by_seed[s]["methods"][MODEL_KEY]["groups"][g].get(metric)
                          for s in seeds]
                cells[f"{metric} {g}"] = {
                    **_spread(values), "per_seed": values,
                    "baselines": {k: _spread([by_seed[s]["methods"][k]["groups"][g].get(metric)
                                              for s in seeds])["mean"]
                                  for k in first if k != MODEL_KEY}}
        summary[split] = {
            "seeds": seeds,
            "ahead_of_every_baseline": {s: v["ahead_of_every_baseline"]
                                        for s, v in verdicts.items()},
            "listens": {s: v["listens"] for s, v in verdicts.items()},
            "seeds_ahead": _seeds_ahead(verdicts),
            "cells": cells,
        }
    return summary


def _spread(values: list[float | None]) -> dict[str, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "sd": None, "min": None, "max": None}
    x = np.asarray(values, dtype=np.float64)
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
            "min": float(x.min()), "max": float(x.max())}


def _seeds_ahead(verdicts: dict[int, dict[str, Any]]) -> dict[str, int]:
    """'<baseline> <metric> <group>' -> how many seeds have a lower mean than that baseline."""
    counts: dict[str, int] = {}
    for v in verdicts.values():
        for c in v["cells"]:
            key = f"{c['baseline']} {c['metric']} {c['group']}"
            counts[key] = counts.get(key, 0) + int(c["ahead"])
        for c in v["listening"]:
            key = f"{ABLATION_KEY} zeroing worsens {c['metric']} {c['group']}"
            counts[key] = counts.get(key, 0) + int(c["worse_when_zeroed"])
    return counts


def format_summary(summary: dict[str, Any]) -> str:
    """Markdown: per split, model mean +- sd per cell next to each baseline, then seed counts."""
    out = []
    for split, s in summary.items():
        n = len(s["seeds"])
        baselines = list(next(iter(s["cells"].values()))["baselines"])
        head = ["Cell", f"DualTalk mean +- sd ({n} seeds)", "min", "max"] + [
            LABELS.get(k, k) for k in baselines]
        lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
        for name, c in s["cells"].items():
            scale = metrics.scale_for(*name.split())
            spread = ("-" if c["mean"] is None else
                      f"{fmt_value(c['mean'], scale)} +- {c['sd'] * scale:.2g}")
            row = [f"{name} {fmt_scale(scale)}", spread,
                   fmt_value(c["min"], scale), fmt_value(c["max"], scale)]
            row += [fmt_value(c["baselines"][k], scale) for k in baselines]
            lines.append("| " + " | ".join(row) + " |")
        behind = {k: v for k, v in s["seeds_ahead"].items() if v < n}
        out += [f"### {split} (seeds {', '.join(map(str, s['seeds']))})", "", *lines, "",
                f"Ahead of every baseline on FD and MSE: "
                f"{sum(s['ahead_of_every_baseline'].values())} of {n} seeds; listens in every "
                f"group: {sum(s['listens'].values())} of {n} seeds.", ""]
        if behind:
            out += ["Checks not passed by every seed (seeds passing):", ""]
            out += [f"- {k}: {v}/{n}" for k, v in sorted(behind.items())] + [""]
    return "\n".join(out)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dualtalk-sweep", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, required=True, help="TrainConfig YAML (with val_split)")
    p.add_argument("--data", type=Path, required=True, help="corpus root")
    p.add_argument("--out", type=Path, required=True, help="sweep folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--splits", nargs="+", default=["test", "ood"])
    p.add_argument("--jobs", type=int, default=2, help="trainings at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="for training and scoring (auto: CUDA when present)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.jobs < 1 or args.threads < 1:
        log.error("--jobs and --threads must be >= 1")
        return 2
    # A scheduler's SIGTERM unwinds like Ctrl-C, so the trainings are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        train_seeds(args.config, args.data, args.out, args.seeds, args.jobs, args.threads,
                    args.device)
        summary = summarize(score_seeds(args.data, args.out, args.seeds, args.splits,
                                        args.device))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    text = format_summary(summary)
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
