"""Markdown of a scoring result: the paper's Table 2 layout, the FD split and the verdict,
with values multiplied by Table 2's scale factors (metrics.json keeps the raw values).
"""
from __future__ import annotations

import math
from typing import Any

from dualtalk_core.evaluation import metrics
from dualtalk_core.evaluation.scoring import LABELS
from dualtalk_core.evaluation.verdict import CI_LEVEL, VERDICT_METRICS
from dualtalk_core.rigs import GROUPS

TABLE_METRICS: tuple[str, ...] = ("FD", "P-FD", "MSE", "SID", "SID-DIM", "rPCC", "Var")


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


def format_aliveness(results: dict[str, Any]) -> str:
    """Blinks per minute and head-angle std per axis, per role: model | GT | ratio (in range?)."""
    alive = results.get("aliveness")
    if not alive:
        return ""
    low, high = alive["ratio_range"]
    lines = [f"Alive at rest: model | ground truth | ratio ({low:g}x-{high:g}x marked ok)", "",
             "| role | minutes (GT) | blinks / min | head std yaw (deg) | pitch | roll |",
             "| --- | --- | --- | --- | --- | --- |"]
    for role, gt in alive["gt"].items():
        model, cmp = alive["model"][role], alive["compare"][role]
        cells = [_alive_cell(model["blinks_per_min"], gt["blinks_per_min"],
                             cmp["blinks_per_min"])]
        cells += [_alive_cell(model["head_std_deg"][axis], gt["head_std_deg"][axis],
                              cmp[f"head_std_{axis}"]) for axis in ("yaw", "pitch", "roll")]
        lines.append(f"| {role} | {gt['minutes']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _alive_cell(model: float | None, gt: float | None, cmp: dict[str, Any]) -> str:
    if model is None or gt is None:
        return "n/a"
    ratio = "n/a" if cmp["ratio"] is None else f"{cmp['ratio']:.2f}x"
    return f"{model:.2f} / {gt:.2f} ({ratio}{' ok' if cmp['within'] else ''})"


def format_voice_alone(results: dict[str, Any]) -> str:
    """One line: how much the partner's voice alone changes the listening face."""
    v = results.get("voice_alone")
    if not v or not v["n"]:
        return ""
    ci = "n/a" if v["ci"] is None else f"[{v['ci'][0]:.2e}, {v['ci'][1]:.2e}]"
    verdict = "**yes**" if v["clear"] else "**no**"
    return (f"Listens to the voice alone (partner face neutral; mean |change| of EXP+JAW while "
            f"listening, voice vs silence, {v['n']} directions): {v['mean']:.2e}, "
            f"{CI_LEVEL:.0%} interval {ci}; clearly above {v['min_effect']:g}: {verdict}\n")


def format_listener_events(results: dict[str, Any]) -> str:
    """Per logged listener event type: the face's event-locked response, with and without the
    partner's face (`listener_events`)."""
    events = results.get("listener_events")
    if not events or not any(row.get("n") for row in events.values()):
        return ""
    lines = ["Reactions to the corpus' listener events (event-locked response, 1 = the corpus' "
             f"own reaction, 0 = none; {CI_LEVEL:.0%} interval):", "",
             "| event | n | corpus peak | with partner face | voice alone (face neutral) |",
             "| --- | --- | --- | --- | --- |"]
    for kind, row in events.items():
        if not row.get("n"):
            continue
        cells = []
        for condition in ("with_face", "voice_alone"):
            c = row[condition]
            cells.append(f"{c['response']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]"
                         + (" clear" if c["clear"] else ""))
        lines.append(f"| {kind} | {row['n']} | {row['gt_peak']:.3f} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines) + "\n"
