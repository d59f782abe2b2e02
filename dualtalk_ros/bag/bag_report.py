"""What `dualtalk-bag eval` leaves behind: metrics.json, report.md and output_bag/."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core.evaluation.metrics import METRICS, scale_for
from dualtalk_core.rigs import GROUPS
from dualtalk_ros.bag import bag_files
from dualtalk_ros.bag.bag_files import NS
from dualtalk_ros.bag.bag_scoring import BagInputs, Predictions

OUTPUT_FACE, OUTPUT_POSE = "/face", "/head_pose"


def write_output_bag(path: Path, inputs: BagInputs, preds: Predictions,
                     frame_id: str = "robot_face") -> None:
    """Predicted face + head pose (log time = when each came out) and the ground truth."""
    store, rig = bag_files.typestore(), preds.rig
    entries: list[tuple[int, str, bytes]] = []
    quats = rig.head_quaternion(np.stack(preds.values)) if preds.values else np.zeros((0, 4))
    for t, values, quat, emitted in zip(preds.t, preds.values, quats, preds.emitted):
        log_ns = int(round(emitted * NS))
        face = bag_files.face_msg(values, rig.names, rig.name, t, frame_id)
        pose = bag_files.pose_msg(quat, t, frame_id)
        entries.append((log_ns, OUTPUT_FACE, bytes(store.serialize_cdr(face, bag_files.FACE))))
        entries.append((log_ns, OUTPUT_POSE, bytes(store.serialize_cdr(pose, bag_files.POSE))))
    for kind in ("gt_face", "gt_pose"):
        data = inputs.data[kind]
        entries.extend((ns, data.topic, raw) for ns, raw in zip(data.log_ns, data.raw))
    entries.sort(key=lambda e: e[0])
    with bag_files.BagWriter(path, "mcap") as bag:
        bag.add(OUTPUT_FACE, bag_files.FACE)
        bag.add(OUTPUT_POSE, bag_files.POSE)
        bag.add(inputs.topics.gt_face, bag_files.FACE)
        bag.add(inputs.topics.gt_pose, bag_files.POSE)
        for log_ns, topic, raw in entries:
            bag.write_raw(topic, log_ns, raw)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def markdown(result: dict[str, Any]) -> str:
    """The human-readable report of one evaluation."""
    frames, lat = result["frames"], result["latency_ms"]
    lines = [f"# DualTalk bag evaluation ({result['mode']})", "",
             f"- bag: `{result['bag']}`", f"- model: `{result['model']}`, rig `{result['rig']}`",
             f"- frames: {frames['ground_truth']} ground truth, {frames['predicted']} predicted "
             f"({frames['held_at_edges']} held at the edges), {frames['emitted']} emitted",
             f"- alignment: {result['alignment']}",
             f"- latency ({result['latency_definition']}): p50 {_fmt(lat['p50'])} ms, "
             f"p95 {_fmt(lat['p95'])} ms, p99 {_fmt(lat['p99'])} ms, max {_fmt(lat['max'])} ms",
             f"- head pose error vs {result['topics']['gt_pose']}: mean "
             f"{_fmt(result['head_pose_error_deg']['mean'])} deg",
             *_bad_data(result), "",
             "| metric | " + " | ".join(GROUPS) + " |", "|---" + "|---:" * len(GROUPS) + "|"]
    for name in METRICS:
        cells = []
        for group in GROUPS:
            value = result["metrics"][group].get(name)
            scale = scale_for(name, group)
            shown = _fmt(None if value is None else value * scale)
            cells.append(shown if scale == 1 else f"{shown} (x{scale:g})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Raw values are in metrics.json; the table multiplies some by the factor "
              "shown (the paper's Table 2 convention). FD, P-FD, MSE, rPCC: lower is better.",
              "", "## Inputs", "", "| stream | topic | type | messages | shape |",
              "|---|---|---|---:|---|"]
    for kind, entry in result["inputs"].items():
        shape = (f"{entry['sample_rate']} Hz, {entry['encoding']}, {entry['chunk_bytes']} B"
                 if "sample_rate" in entry else f"{_fmt(entry.get('rate_hz'), 3)} Hz")
        lines.append(f"| {kind} | `{entry['topic']}` | {entry['type']} | {entry['messages']} "
                     f"| {shape} |")
    return "\n".join(lines) + "\n"


def _bad_data(result: dict[str, Any]) -> list[str]:
    """The report's line on skipped data (none: no line), so a score is never read as if
    the whole bag had been used."""
    corrupted = {t: len(v) for t, v in result.get("corrupted_messages", {}).items()}
    dropped = result["run"].get("dropped_messages") or {}
    if not corrupted and not dropped:
        return []
    return [f"- bad data skipped: corrupted records {corrupted or 'none'}, messages failing the "
            f"input checks {dropped or 'none'} (topics and log times in metrics.json)"]


def write_all(out: Path, result: dict[str, Any], inputs: BagInputs, preds: Predictions) -> None:
    """metrics.json, report.md and output_bag/ in `out` (the bag folder must not exist)."""
    out.mkdir(parents=True, exist_ok=True)
    write_output_bag(out / "output_bag", inputs, preds)
    (out / "metrics.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(markdown(result))
