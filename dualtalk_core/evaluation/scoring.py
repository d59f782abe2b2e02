"""`dualtalk-eval`: the paper's Table 2 protocol on a corpus split, for the model and baselines.

Every clip is scored in both directions (each speaker is the target once), with the published
inference: one whole-clip `predict` call, no smoothing. Metrics are per clip and per group
(dualtalk_core.evaluation.metrics), then averaged over clip directions. Outputs in `--out`:
`metrics.json` (raw means, counts, and with baselines a verdict), `per_clip.jsonl`, `table.md`
(paper layout, scaled; FD split into offset and spread; the verdict: is the model ahead of each
baseline, and does zeroing the partner hurt it, with a paired bootstrap interval per cell that
tells a lead from noise) and `plots/*.png` (channel trajectories of a few clips).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from scipy import stats
from sklearn.cluster import KMeans
from tqdm import tqdm

from dualtalk_core.evaluation import baselines as base
from dualtalk_core.evaluation import metrics
from dualtalk_core.dataset.clips import list_clips, load_clip, load_motion
from dualtalk_core.rigs import GROUPS, Rig, get_rig
from dualtalk_core.units import FRAME_RATE_HZ

log = logging.getLogger(__name__)

MODEL_KEY = "dualtalk"
LABELS: dict[str, str] = {
    MODEL_KEY: "DualTalk", "speaker_only": "Speaker only (partner zeroed)",
    "random": "Random frames", "nearest_motion": "Nearest motion", "mirror": "Mirror partner",
}
TABLE_METRICS: tuple[str, ...] = ("FD", "P-FD", "MSE", "SID", "SID-DIM", "rPCC", "Var")
GT_METRICS: tuple[str, ...] = ("SID", "SID-DIM", "Var")
PLOT_CHANNELS: dict[str, tuple[str, ...]] = {
    "arkit52": ("jawOpen", "mouthSmileLeft", "headPitch"),
    "flame56": ("jawRotX", "exp0", "headRotX"),
}
# DIM fits its SID clusters on all ground-truth frames of the set; a seeded subset of this many
# frames gives the same clusters to within k-means' own variation, at bounded cost.
DIM_SID_MAX_FRAMES = 100_000


def _directions(clip: Any) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(target speaker 1|2, self audio, partner audio, partner motion, gt motion) per direction."""
    for me in (0, 1):
        other = 1 - me
        yield me + 1, clip.audio[me], clip.audio[other], clip.motion[other], clip.motion[me]


def fit_dim_clusters(root: str | Path, split: str, clips: list[str], rig: Rig,
                     seed: int = 0) -> tuple[dict[str, KMeans], int]:
    """Per-group DIM-SID clusters on the split's ground-truth frames (both speakers)."""
    motions = [load_motion(Path(root) / split / f"{c}_speaker{s}.npz")[0]
               for c in clips for s in (1, 2)]
    frames = np.concatenate(motions)
    if len(frames) > DIM_SID_MAX_FRAMES:
        keep = np.random.default_rng(seed).choice(len(frames), DIM_SID_MAX_FRAMES, replace=False)
        frames = frames[np.sort(keep)]
    clusters = {g: metrics.fit_clusters(frames[:, rig.group_index(g)], metrics.SID_K[g])
                for g in GROUPS}
    return clusters, len(frames)


def build_methods(model: base.Predictor, rig: str, root: str | Path, with_baselines: bool,
                  train_split: str = "train", max_train_clips: int | None = 500,
                  seed: int = 0) -> dict[str, base.Predictor]:
    """The model, plus (optionally) the ablation and the DIM baselines, in table order."""
    methods: dict[str, base.Predictor] = {MODEL_KEY: model}
    if not with_baselines:
        return methods
    methods["speaker_only"] = base.SpeakerOnly(model, rig)
    if (Path(root) / train_split).is_dir():
        pairs = base.load_train_motion(root, train_split, rig, max_train_clips, seed)
        methods["random"] = base.RandomFrames(pairs, seed)
        methods["nearest_motion"] = base.NearestMotion(pairs)
    else:
        log.warning("no %s split under %s: skipping the random and nearest-motion baselines",
                    train_split, root)
    methods["mirror"] = base.MirrorPartner()
    return methods


def _gt_row(gt: np.ndarray, rig: Rig, clusters: dict[str, KMeans]) -> dict[str, dict[str, float]]:
    """Diversity of the ground truth itself (DIM's "GT" row): SID, DIM-SID and Var."""
    out = {}
    for g in GROUPS:
        x, k = gt[:, rig.group_index(g)], metrics.SID_K[g]
        out[g] = {"SID": metrics.sid(x, x, k), "SID-DIM": metrics.sid_dim(x, x, k, clusters[g]),
                  "Var": metrics.var(x)}
    return out


def _mean_rows(rows: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Mean over clip directions per group and metric; NaN (undefined rPCC) rows are skipped."""
    groups: dict[str, dict[str, float | None]] = {}
    undefined: dict[str, dict[str, int]] = {}
    for g in GROUPS:
        groups[g], undefined[g] = {}, {}
        for name in rows[0][g]:
            values = np.array([r[g][name] for r in rows], dtype=np.float64)
            finite = values[np.isfinite(values)]
            groups[g][name] = float(finite.mean()) if finite.size else None
            undefined[g][name] = int(values.size - finite.size)
    return {"n": len(rows), "groups": groups, "undefined": undefined}


def _finite_or_none(row: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """NaN (an undefined rPCC) -> None, so the per-clip rows are strict JSON."""
    return {g: {m: (v if math.isfinite(v) else None) for m, v in vals.items()}
            for g, vals in row.items()}


def _score_clip(clip: Any, methods: dict[str, base.Predictor], rig: Rig,
                clusters: dict[str, KMeans]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(target, method key or "gt", metrics) for both directions of one clip."""
    for target, own_audio, other_audio, other_motion, gt in _directions(clip):
        for key, method in methods.items():
            pred = method.predict(own_audio, other_audio, other_motion)  # (T, C)
            yield target, key, metrics.evaluate_clip(pred, gt, other_motion, rig, clusters)
        yield target, "gt", _gt_row(gt, rig, clusters)


def evaluate_model(model: base.Predictor, root: str | Path, split: str = "test",
                   baselines: bool = True, max_clips: int | None = None,
                   train_split: str = "train", max_train_clips: int | None = 500,
                   seed: int = 0, progress: bool = True, rig: str | None = None) -> dict[str, Any]:
    """Score `model` (and the baselines) on every clip of `split` in both directions.

    Returns a JSON-ready dict: `methods[key]` = {label, n, groups: {EXP|JAW|POSE: {metric: mean}},
    undefined (counts of NaN values left out of a mean)}, a `gt` row, `per_clip` rows and the
    clip counts. `rig` defaults to `model.config.rig`.
    """
    if max_clips is not None and max_clips < 1:
        raise ValueError(f"max_clips must be >= 1 or None, got {max_clips}")
    rig_obj = get_rig(rig or model.config.rig)  # type: ignore[attr-defined]
    clips = list_clips(root, split)[:max_clips]
    if not clips:
        raise ValueError(f"no clips in {Path(root) / split}; expected <clip>_speaker1.wav ...")
    clusters, n_cluster_frames = fit_dim_clusters(root, split, clips, rig_obj, seed)
    methods = build_methods(model, rig_obj.name, root, baselines, train_split,
                            max_train_clips, seed)
    rows: dict[str, list[dict[str, dict[str, float]]]] = {key: [] for key in [*methods, "gt"]}
    per_clip, skipped = [], []
    for name in tqdm(clips, desc=f"eval {split}", unit="clip", disable=not progress):
        clip = load_clip(root, split, name)
        if clip.rig != rig_obj.name:
            raise ValueError(f"clip {name!r} uses rig {clip.rig!r}, the model {rig_obj.name!r}")
        if clip.frames < max(metrics.SID_K.values()):
            log.warning("clip %r: %d frames, fewer than SID needs; skipped", name, clip.frames)
            skipped.append(name)
            continue
        for target, key, row in _score_clip(clip, methods, rig_obj, clusters):
            rows[key].append(row)
            if key != "gt":
                per_clip.append({"clip": name, "target": target, "method": key,
                                 **_finite_or_none(row)})
    if not rows["gt"]:
        raise ValueError(f"every clip of {Path(root) / split} was too short to score")
    return {
        "split": split, "data": str(root), "rig": rig_obj.name,
        "n_clips": len(clips) - len(skipped), "n_directions": len(rows["gt"]),
        "skipped": skipped, "dim_sid_cluster_frames": n_cluster_frames,
        "sid_k": metrics.SID_K, "table_scale": metrics.TABLE_SCALE,
        "methods": {k: {"label": LABELS.get(k, k), **_mean_rows(rows[k])} for k in methods},
        "gt": {"label": "GT", **_mean_rows(rows["gt"])},
        "per_clip": per_clip,
    }


def fmt_scale(scale: float) -> str:
    """The header label of a Table 2 scale factor: 1e3 -> "x1e3"."""
    return "x1" if scale == 1 else f"x1e{round(math.log10(scale))}"


def fmt_value(value: float | None, scale: float) -> str:
    """A metric value times its Table 2 scale, 4 significant digits; None (undefined) -> "-"."""
    if value is None:
        return "-"
    # SID of a collapsed output is -log2(1 + 1e-6) ~ -1.4e-6 by the release's formula: show 0.
    return "0" if abs(value * scale) < 1e-5 else f"{value * scale:.4g}"


def format_table(results: dict[str, Any]) -> str:
    """Markdown table in the paper's Table 2 layout: metric-major columns, EXP/JAW/POSE each."""
    head = ["Method"] + [f"{m} {g} {fmt_scale(metrics.scale_for(m, g))}"
                         for m in TABLE_METRICS for g in GROUPS]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    rows = list(results["methods"].values()) + [results["gt"]]
    for row in rows:
        cells = [row["label"]] + [
            fmt_value(row["groups"][g].get(m), metrics.scale_for(m, g))
            for m in TABLE_METRICS for g in GROUPS]
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"\n{results['n_directions']} clip directions ({results['n_clips']} clips) of split "
            f"`{results['split']}`, rig `{results['rig']}`. Values are multiplied by the factor "
            "in the header; FD, P-FD, MSE, rPCC: lower is better. SID = release variant (k-means "
            "on the prediction), SID-DIM = DIM's (k-means on the split's ground truth).\n")
    return "\n".join(lines) + "\n" + note


# What "ahead of a baseline" means in the verdict: lower FD and MSE (the and DIM's
# headline metrics), and, against the speaker-only ablation, that zeroing the partner raises
# P-FD and rPCC (the model uses what it hears and sees of the partner).
VERDICT_METRICS: tuple[str, ...] = ("FD", "MSE")
LISTENING_METRICS: tuple[str, ...] = ("P-FD", "rPCC")
ABLATION_KEY = "speaker_only"


# A lead in the mean is only as good as its distance from zero: the verdict also gives a paired
# bootstrap interval of the mean per-direction difference (model minus the other method).
CI_LEVEL = 0.95
CI_RESAMPLES = 2000


def _paired(per_clip: list[dict[str, Any]], key: str, group: str, metric: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """The model's and method `key`'s values on the directions where both are defined."""
    by_direction: dict[tuple[str, int], dict[str, float]] = {}
    for row in per_clip:
        value = row[group][metric]
        if value is not None and row["method"] in (MODEL_KEY, key):
            by_direction.setdefault((row["clip"], row["target"]), {})[row["method"]] = value
    pairs = [v for v in by_direction.values() if len(v) == 2]
    return (np.array([v[MODEL_KEY] for v in pairs], dtype=np.float64),
            np.array([v[key] for v in pairs], dtype=np.float64))


def mean_difference_ci(ours: np.ndarray, theirs: np.ndarray, seed: int = 0
                       ) -> tuple[float, float] | None:
    """`CI_LEVEL` paired bootstrap (percentile) interval of mean(ours - theirs) over directions;
    None with fewer than 2 pairs. Seeded: the same rows give the same interval."""
    diff = np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    if diff.size < 2:
        return None
    if np.all(diff == diff[0]):  # no spread to resample (bootstrap would warn)
        return float(diff[0]), float(diff[0])
    res = stats.bootstrap((diff,), np.mean, n_resamples=CI_RESAMPLES, vectorized=True,
                          confidence_level=CI_LEVEL, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _compare(per_clip: list[dict[str, Any]], key: str, group: str, metric: str
             ) -> dict[str, Any]:
    """Directions where the model is lower than method `key`, directions compared, the interval
    of the mean difference, and whether it lies wholly below zero ("clearly lower")."""
    ours, theirs = _paired(per_clip, key, group, metric)
    ci = mean_difference_ci(ours, theirs)
    return {"lower_in": int((ours < theirs).sum()), "directions": int(ours.size),
            "mean_difference_ci": None if ci is None else list(ci),
            "clearly_lower": ci is not None and ci[1] < 0}


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """Is the model ahead of every baseline (mean FD and MSE lower, per group), and does zeroing
    the partner make its P-FD and rPCC worse? With per-direction win counts, so a mean that
    leads by a hair can be told from one that leads on most clips."""
    methods, per_clip = results["methods"], results.get("per_clip", [])
    model = methods[MODEL_KEY]["groups"]
    cells: list[dict[str, Any]] = []
    for key in (k for k in methods if k != MODEL_KEY):
        for metric in VERDICT_METRICS:
            for g in GROUPS:
                ours, theirs = model[g].get(metric), methods[key]["groups"][g].get(metric)
                c = _compare(per_clip, key, g, metric)
                cells.append({"baseline": key, "metric": metric, "group": g, "model": ours,
                              "baseline_value": theirs, "ahead": _lower(ours, theirs),
                              "directions_ahead": c["lower_in"], "directions": c["directions"],
                              "mean_difference_ci": c["mean_difference_ci"],
                              "clearly_ahead": c["clearly_lower"]})
    listening: list[dict[str, Any]] = []
    if ABLATION_KEY in methods:
        ablated = methods[ABLATION_KEY]["groups"]
        for metric in LISTENING_METRICS:
            for g in GROUPS:
                ours, zeroed = model[g].get(metric), ablated[g].get(metric)
                c = _compare(per_clip, ABLATION_KEY, g, metric)
                listening.append({"metric": metric, "group": g, "model": ours,
                                  "partner_zeroed": zeroed,
                                  "worse_when_zeroed": _lower(ours, zeroed),
                                  "directions_worse": c["lower_in"],
                                  "directions": c["directions"],
                                  "mean_difference_ci": c["mean_difference_ci"],
                                  "clearly_worse_when_zeroed": c["clearly_lower"]})
    return {"ahead_of_every_baseline": all(c["ahead"] for c in cells),
            "listens": bool(listening) and all(c["worse_when_zeroed"] for c in listening),
            "clearly_ahead_of_every_baseline": all(c["clearly_ahead"] for c in cells),
            "clearly_listens": (bool(listening)
                                and all(c["clearly_worse_when_zeroed"] for c in listening)),
            "cells": cells, "listening": listening}


def _lower(ours: float | None, theirs: float | None) -> bool:
    return ours is not None and theirs is not None and ours < theirs


def _noise_mark(ci: list[float] | None) -> str:
    """"clear" when the interval of the mean difference excludes 0, else "within noise"."""
    if ci is None:
        return "no interval"
    return "within noise" if ci[0] <= 0.0 <= ci[1] else "clear"


def format_verdict(v: dict[str, Any]) -> str:
    """Markdown of a `verdict()`: one row per baseline, one cell per FD/MSE group ("ahead 31/40,
    clear" = lower mean, lower in 31 of 40 directions, and the interval of the mean difference
    excludes 0), then the listening check against the ablation."""
    head = ["Baseline"] + [f"{m} {g}" for m in VERDICT_METRICS for g in GROUPS]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---" * (len(head) - 1) + "|"]
    for key in dict.fromkeys(c["baseline"] for c in v["cells"]):
        row = [LABELS.get(key, key)]
        for c in (c for c in v["cells"] if c["baseline"] == key):
            row.append(f"{'ahead' if c['ahead'] else '**behind**'} "
                       f"{c['directions_ahead']}/{c['directions']}, "
                       f"{_noise_mark(c.get('mean_difference_ci'))}")
        lines.append("| " + " | ".join(row) + " |")
    level = f"{CI_LEVEL:.0%}"
    out = ["Model against each baseline (lower mean; directions where the model is lower; "
           f"whether the {level} paired bootstrap interval of the mean difference excludes 0):",
           "", *lines, "",
           f"Ahead of every baseline on FD and MSE: **{v['ahead_of_every_baseline']}**; "
           f"clearly ahead in every cell: **{v.get('clearly_ahead_of_every_baseline')}**"]
    if v["listening"]:
        out += ["", "Zeroing the partner's inputs (worse = higher; directions where it is worse):",
                ""]
        for c in v["listening"]:
            scale = metrics.scale_for(c["metric"], c["group"])
            out.append(f"- {c['metric']} {c['group']}: {fmt_value(c['model'], scale)} -> "
                       f"{fmt_value(c['partner_zeroed'], scale)} ({fmt_scale(scale)}), "
                       f"{'worse' if c['worse_when_zeroed'] else '**not worse**'} "
                       f"({c['directions_worse']}/{c['directions']}, "
                       f"{_noise_mark(c.get('mean_difference_ci'))})")
        out += ["", "Listens (every group's P-FD and rPCC worse when zeroed): "
                f"**{v['listens']}**; clearly worse in every group: "
                f"**{v.get('clearly_listens')}**"]
    return "\n".join(out) + "\n"


def format_fd_split(results: dict[str, Any]) -> str:
    """Markdown: each method's FD split into its offset (means) and spread (covariances) terms,
    per group. When every method's offset is about the same, FD separates them by spread alone."""
    head = ["Method"] + [f"FD {g} {part} {fmt_scale(metrics.scale_for('FD', g))}"
                         for g in GROUPS for part in ("offset", "spread")]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for row in results["methods"].values():
        cells = [row["label"]]
        for g in GROUPS:
            fd_all, offset = row["groups"][g].get("FD"), row["groups"][g].get("FD-offset")
            scale = metrics.scale_for("FD", g)
            spread = None if fd_all is None or offset is None else fd_all - offset
            cells += [fmt_value(offset, scale), fmt_value(spread, scale)]
        lines.append("| " + " | ".join(cells) + " |")
    return ("FD = offset (squared distance of the means) + spread (covariance term), mean over "
            "directions:\n\n" + "\n".join(lines) + "\n")


def plot_clips(model: base.Predictor, root: str | Path, split: str, clips: list[str],
               out_dir: str | Path, rig: str) -> list[Path]:
    """One PNG per clip (speaker 1 as target): prediction, ground truth and partner channels."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display on training boxes
    import matplotlib.pyplot as plt

    rig_obj = get_rig(rig)
    channels = [c for c in PLOT_CHANNELS.get(rig, rig_obj.names[:3]) if c in rig_obj.names]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in clips:
        clip = load_clip(root, split, name)
        _, own_audio, other_audio, other_motion, gt = next(_directions(clip))
        pred = model.predict(own_audio, other_audio, other_motion)
        fig, axes = plt.subplots(len(channels), 1, figsize=(10, 2.2 * len(channels)),
                                 sharex=True, squeeze=False)
        for ax, channel in zip(axes[:, 0], channels):
            i = rig_obj.names.index(channel)
            t = np.arange(len(gt)) / FRAME_RATE_HZ
            ax.plot(t, other_motion[:, i], label="partner", color="0.7", linewidth=0.8)
            ax.plot(t, gt[:, i], label="ground truth", color="black", linewidth=1.0)
            ax.plot(t[: len(pred)], pred[: len(t), i], label="prediction", color="tab:red",
                    linewidth=1.0)
            ax.set_ylabel(channel)
        axes[0, 0].legend(loc="upper right")
        axes[0, 0].set_title(f"{split}/{name}, speaker 1")
        axes[-1, 0].set_xlabel("time (s)")
        fig.tight_layout()
        path = out_dir / f"{name}_speaker1.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def write_outputs(results: dict[str, Any], out_dir: str | Path) -> None:
    """metrics.json (without per-clip rows; with the verdict when there are baselines),
    per_clip.jsonl and table.md (the Table 2 layout, the FD split, then the verdict)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in results.items() if k != "per_clip"}
    table = format_table(results) + "\n" + format_fd_split(results)
    if len(results["methods"]) > 1:
        summary["verdict"] = verdict(results)
        table += "\n" + format_verdict(summary["verdict"])
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    with open(out_dir / "per_clip.jsonl", "w") as f:
        for row in results.get("per_clip", []):
            f.write(json.dumps(row, allow_nan=False) + "\n")
    (out_dir / "table.md").write_text(table)


def _load_model(path: str, device: str) -> Any:
    # Imported here so that the metric helpers above load without building torch models.
    from dualtalk_core.model.network import DualTalkModel

    return DualTalkModel.load(path, device=device)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dualtalk-eval", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="corpus root with train/, test/, ood/")
    p.add_argument("--split", default="test", help="split folder to score (default: test)")
    p.add_argument("--model", required=True, help="checkpoint folder or published DualTalk.pth")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--baselines", action="store_true",
                   help="also score speaker-only, random, nearest-motion and mirror")
    p.add_argument("--max-clips", type=int, default=None, help="score only the first N clips")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the model runs (default: auto = CUDA when available)")
    p.add_argument("--train-split", default="train", help="split the baselines draw from")
    p.add_argument("--max-train-clips", type=int, default=500,
                   help="seeded subset of train clips for the baselines (default: 500)")
    p.add_argument("--plots", type=int, default=3, help="clips to plot (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.max_clips is not None and args.max_clips < 1:
        p.error("--max-clips must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = _load_model(args.model, args.device)
        results = evaluate_model(model, args.data, args.split, args.baselines, args.max_clips,
                                 args.train_split, args.max_train_clips, args.seed)
        write_outputs(results, args.out)
        clips = list_clips(args.data, args.split)[: min(args.plots, results["n_clips"])]
        plot_clips(model, args.data, args.split, clips, Path(args.out) / "plots", results["rig"])
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    print((Path(args.out) / "table.md").read_text())
    print(f"wrote {args.out}/metrics.json, table.md, per_clip.jsonl and plots/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
