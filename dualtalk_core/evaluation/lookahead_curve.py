"""How much quality each millisecond of lookahead buys: `dualtalk-eval` runs of one recipe trained
at several lookaheads, side by side.

A face's lookahead is most of the node's latency (the lips trail the voice by lookahead + an
input chunk + a model step), so choosing it is a trade an integrator should see in numbers.

`python -m dualtalk_core.evaluation.lookahead_curve --point 40 test=EVAL ood=EVAL
--point 80 ... --reference 120 --out DIR` reads each run's `per_clip.jsonl` (the model's
rows) and writes `curve.json`, `curve.md` and `curve.png`: per split, lookahead, group (EXP,
JAW, POSE) and metric (FD, MSE) the mean over directions with its bootstrap interval
(`verdict.mean_difference_ci` against zero), and the paired interval of the difference to the
reference lookahead, read as `better`, `worse` or `within noise` (lower is better).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core.evaluation.model_compare import read_rows, reading
from dualtalk_core.evaluation.verdict import mean_difference_ci
from dualtalk_core.rigs import GROUPS

METRICS = ("FD", "MSE")


def point(runs: dict[str, dict], reference: dict[str, dict] | None) -> dict[str, Any]:
    """One lookahead's figures per split/group/metric from its rows ({split: rows})."""
    out: dict[str, Any] = {}
    for split, rows in runs.items():
        ref = None if reference is None else reference.get(split)
        for group in GROUPS:
            for metric in METRICS:
                keys = [d for d in sorted(rows) if rows[d][group][metric] is not None]
                values = np.array([rows[d][group][metric] for d in keys], np.float64)
                cell: dict[str, Any] = {"directions": len(keys),
                                        "mean": float(values.mean()) if len(keys) else None,
                                        "ci": _listed(mean_difference_ci(values,
                                                                         np.zeros_like(values)))}
                if ref is not None:
                    both = [d for d in keys if d in ref and ref[d][group][metric] is not None]
                    ci = mean_difference_ci(
                        np.array([rows[d][group][metric] for d in both], np.float64),
                        np.array([ref[d][group][metric] for d in both], np.float64))
                    cell["vs_reference_ci"] = _listed(ci)
                    cell["vs_reference"] = reading(ci)
                out[f"{split}/{group}/{metric}"] = cell
    return out


def _listed(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]


def curve(points: dict[float, dict[str, str]], reference_ms: float | None) -> dict[str, Any]:
    """{lookahead ms: {split: eval folder}} -> the figures of every point (see `point`)."""
    rows = {ms: {split: read_rows(folder) for split, folder in runs.items()}
            for ms, runs in points.items()}
    if reference_ms is not None and reference_ms not in rows:
        raise ValueError(f"--reference {reference_ms:g}: no --point at that lookahead")
    ref = None if reference_ms is None else rows[reference_ms]
    return {"reference_ms": reference_ms, "metrics": list(METRICS), "groups": list(GROUPS),
            "points": {f"{ms:g}": {"folders": points[ms],
                                   "cells": point(rows[ms], None if ms == reference_ms else ref)}
                       for ms in sorted(rows)}}


def table(result: dict[str, Any]) -> str:
    """Markdown: one table per split, a row per lookahead, mean [interval] per cell."""
    splits = sorted({key.split("/")[0] for p in result["points"].values() for key in p["cells"]})
    ref = result["reference_ms"]
    lines = []
    for split in splits:
        head = [f"{m} {g}" for m in result["metrics"] for g in result["groups"]]
        lines += [f"**{split}** (mean over directions, 95 % bootstrap interval"
                  + ("" if ref is None else f"; against {ref:g} ms: + worse, - better, "
                     "= within noise") + ")", "",
                  "| lookahead | " + " | ".join(head) + " |",
                  "| --- |" + " --- |" * len(head)]
        for ms, p in result["points"].items():
            cells = []
            for metric in result["metrics"]:
                for group in result["groups"]:
                    c = p["cells"].get(f"{split}/{group}/{metric}")
                    cells.append("n/a" if c is None or c["mean"] is None else _cell(c))
            lines.append(f"| {ms} ms | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(c: dict[str, Any]) -> str:
    ci = c["ci"]
    text = f"{c['mean']:.4g}" + ("" if ci is None else f" [{ci[0]:.3g}, {ci[1]:.3g}]")
    mark = {"better": " -", "worse": " +", "within noise": " ="}.get(c.get("vs_reference", ""), "")
    return text + mark


def plot(result: dict[str, Any], path: Path) -> None:
    """FD and MSE against lookahead per group, one line per split, interval bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = [float(k) for k in result["points"]]
    splits = sorted({key.split("/")[0] for p in result["points"].values() for key in p["cells"]})
    fig, axes = plt.subplots(len(result["metrics"]), len(result["groups"]),
                             figsize=(4 * len(result["groups"]), 3 * len(result["metrics"])),
                             squeeze=False)
    for r, metric in enumerate(result["metrics"]):
        for c, group in enumerate(result["groups"]):
            ax = axes[r][c]
            for split in splits:
                cells = [p["cells"].get(f"{split}/{group}/{metric}")
                         for p in result["points"].values()]
                mean = np.array([np.nan if x is None or x["mean"] is None else x["mean"]
                                 for x in cells])
                lo = np.array([np.nan if x is None or x["ci"] is None else x["ci"][0]
                               for x in cells])
                hi = np.array([np.nan if x is None or x["ci"] is None else x["ci"][1]
                               for x in cells])
                ax.errorbar(ms, mean, yerr=[mean - lo, hi - mean], marker="o", capsize=3,
                            label=split)
            ax.set_title(f"{metric} {group}")
            ax.set_xlabel("lookahead (ms)")
            ax.set_xticks(ms)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _parse_points(raw: list[list[str]]) -> dict[float, dict[str, str]]:
    points: dict[float, dict[str, str]] = {}
    for entry in raw:
        try:
            ms = float(entry[0])
        except ValueError:
            raise ValueError(f"--point {entry[0]!r}: the lookahead in ms comes first") from None
        runs = {}
        for item in entry[1:]:
            split, sep, folder = item.partition("=")
            if not sep or not split or not folder:
                raise ValueError(f"--point {entry[0]} {item!r}: expected SPLIT=EVAL_FOLDER")
            runs[split] = folder
        if not runs or ms in points:
            raise ValueError(f"--point {entry[0]}: give each lookahead once, with >= 1 run")
        points[ms] = runs
    return points


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lookahead_curve", description=__doc__.splitlines()[0])
    p.add_argument("--point", nargs="+", action="append", required=True,
                   metavar="MS SPLIT=EVAL", help="a lookahead (ms) and its dualtalk-eval "
                   "folders, e.g. --point 80 test=eval/la80_test ood=eval/la80_ood")
    p.add_argument("--reference", type=float, help="lookahead the others are paired against")
    p.add_argument("--out", required=True, help="folder for curve.json, curve.md, curve.png")
    args = p.parse_args(argv)
    try:
        result = curve(_parse_points(args.point), args.reference)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "curve.json").write_text(json.dumps(result, indent=1) + "\n")
        text = table(result)
        (out / "curve.md").write_text(text)
        plot(result, out / "curve.png")
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"lookahead_curve: {err}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
