"""Is a new model worse than the one it replaces? Two `dualtalk-eval` runs, direction by direction.

`python -m dualtalk_core.evaluation.model_compare --new EVAL_NEW --old EVAL_OLD [--out F.md]`
reads both runs' `per_clip.jsonl` (the model's rows), pairs the directions both scored, and per
group (EXP, JAW, POSE) and metric gives the two means, the paired bootstrap interval of
mean(new - old) (`verdict.mean_difference_ci`) and what the interval can tell: `better` (wholly
below 0; every metric here is lower-is-better), `worse` (wholly above) or `within noise`.
Models are compared on the same split and clips only; pick the replacement on `val`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core.evaluation.scoring import MODEL_KEY
from dualtalk_core.evaluation.verdict import mean_difference_ci
from dualtalk_core.rigs import GROUPS

METRICS = ("FD", "MSE", "P-FD")


def read_rows(folder: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """{(clip, target): the model's per-direction row} of one `dualtalk-eval` output folder."""
    path = Path(folder) / "per_clip.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (a dualtalk-eval --out folder has it)")
    rows = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not JSON ({err})") from None
            if row.get("method") == MODEL_KEY:
                rows[(row["clip"], row["target"])] = row
    if not rows:
        raise ValueError(f"{path}: no rows of the model ({MODEL_KEY!r})")
    return rows


def reading(ci: tuple[float, float] | None) -> str:
    """What the interval of mean(new - old) tells, every metric here being lower-is-better."""
    return ("n/a" if ci is None else "better" if ci[1] < 0
            else "worse" if ci[0] > 0 else "within noise")


def compare(new: dict[tuple[str, int], dict[str, Any]],
            old: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per group and metric: means, interval of the difference, the reading."""
    both = sorted(set(new) & set(old))
    if len(both) < 2:
        raise ValueError(f"the two runs share {len(both)} direction(s); score the same clips")
    out = []
    for group in GROUPS:
        for metric in METRICS:
            pairs = [(new[d][group][metric], old[d][group][metric]) for d in both
                     if new[d][group][metric] is not None and old[d][group][metric] is not None]
            a, b = (np.array(x, dtype=np.float64) for x in zip(*pairs)) if pairs else ([], [])
            ci = mean_difference_ci(np.asarray(a), np.asarray(b))
            out.append({"group": group, "metric": metric, "directions": len(pairs),
                        "new": float(np.mean(a)) if len(pairs) else None,
                        "old": float(np.mean(b)) if len(pairs) else None,
                        "ci": None if ci is None else list(ci), "reading": reading(ci)})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| group | metric | directions | new | old | new - old (95 % interval) | reading |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ci = "n/a" if r["ci"] is None else f"[{r['ci'][0]:.3g}, {r['ci'][1]:.3g}]"
        new = "n/a" if r["new"] is None else f"{r['new']:.4g}"
        old = "n/a" if r["old"] is None else f"{r['old']:.4g}"
        lines.append(f"| {r['group']} | {r['metric']} | {r['directions']} | {new} | {old} | "
                     f"{ci} | {r['reading']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="model_compare", description=__doc__.splitlines()[0])
    p.add_argument("--new", required=True, help="dualtalk-eval --out folder of the new model")
    p.add_argument("--old", required=True, help="the same for the model it replaces")
    p.add_argument("--out", help="also write the table here")
    args = p.parse_args(argv)
    try:
        text = table(compare(read_rows(args.new), read_rows(args.old)))
        if args.out:
            Path(args.out).write_text(text)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"model_compare: {err}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
