"""Bag evaluation, shared by the offline and live modes: inputs, predictions, alignment, scores.

Alignment: predictions come on the engine's 25 fps grid (anchored at the first audio sample),
ground truth on whatever grid the bag has (25 or 30 Hz, any start). Each ground-truth stamp
gets the LINEAR INTERPOLATION of the two predicted frames around it (exact when the grids
coincide); a stamp is "predicted" when those frames are adjacent (no gap) or one is within half
a frame of it. Outside the predicted span the edge frame is held and the stamp is not counted
as predicted. The partner's face is interpolated onto the ground-truth stamps the same way.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core.evaluation import metrics
from dualtalk_core.rigs import Rig, to_rig_order
from dualtalk_core.units import FRAME_S
from dualtalk_ros.bag import bag_files
from dualtalk_ros.bridge import messages
from dualtalk_ros.bag.bag_files import NS, TopicData

log = logging.getLogger(__name__)

INPUT_KINDS = ("self_audio", "partner_audio", "partner_face")


@dataclass
class EvalTopics:
    """Topic names in the bag (defaults: what `dualtalk-bag record` writes)."""

    self_audio: str = "/self_audio"
    partner_audio: str = "/partner_audio"
    partner_face: str = "/partner_face"
    gt_face: str = "/ground_truth/face"
    gt_pose: str = "/ground_truth/head_pose"

    def wanted(self) -> dict[str, str]:
        """{topic: expected type}; distinct topics are required."""
        types = {"self_audio": bag_files.AUDIO, "partner_audio": bag_files.AUDIO,
                 "partner_face": bag_files.FACE, "gt_face": bag_files.FACE,
                 "gt_pose": bag_files.POSE}
        wanted = {getattr(self, kind): msgtype for kind, msgtype in types.items()}
        if len(wanted) != len(types):
            raise ValueError(f"the five topics must differ, got {vars(self)}")
        return wanted


@dataclass
class BagInputs:
    """The five topics of an evaluation bag, read and type-checked."""

    path: Path
    topics: EvalTopics
    data: dict[str, TopicData]  # by kind: self_audio, ..., gt_pose

    @classmethod
    def read(cls, path: str | Path, topics: EvalTopics) -> BagInputs:
        by_topic = bag_files.read_topics(path, topics.wanted())
        data = {kind: by_topic[topic] for kind, topic in vars(topics).items()}
        empty = [d.topic for d in data.values() if not d.msgs]
        if empty:
            raise bag_files.BagTopicError(f"{path}: no messages on {', '.join(empty)}")
        return cls(Path(path), topics, data)

    def corrupted(self) -> dict[str, list[dict[str, float | str]]]:
        """{topic: [{log_time_s, reason}]} of the records skipped as undeserializable."""
        return {d.topic: [{"log_time_s": ns / NS, "reason": why} for ns, why in d.corrupt]
                for d in self.data.values() if d.corrupt}

    def input_events(self) -> list[tuple[int, str, int]]:
        """(log time ns, kind, index) of the three input streams in log-time order."""
        events = [(ns, kind, i) for kind in INPUT_KINDS
                  for i, ns in enumerate(self.data[kind].log_ns)]
        return sorted(events)

    def audio_end_s(self) -> float:
        """Time just after the last sample of the longer audio input."""
        ends = []
        for kind in ("self_audio", "partner_audio"):
            for msg in reversed(self.data[kind].msgs):  # the last chunk the node would take
                try:
                    samples, rate, t = messages.audio_chunk(msg)
                except ValueError:
                    continue
                ends.append(t + len(samples) / rate)
                break
        if not ends:
            raise ValueError(f"{self.path}: no usable audio chunk on {self.topics.self_audio} "
                             f"or {self.topics.partner_audio}")
        return max(ends)

    def gt_stamps(self) -> np.ndarray:
        return np.array([messages.stamp_to_s(m.header.stamp) for m in self.data["gt_face"].msgs])

    def output_target_s(self) -> float:
        """Predictions are complete once a frame at or after this stamp is out."""
        return min(self.gt_stamps().max(), self.audio_end_s() - FRAME_S)


@dataclass
class Predictions:
    """Output frames: stamps (M,), values (M, C) in rig order, when each came out (M,)."""

    rig: Rig
    t: list[float] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    emitted: list[float] = field(default_factory=list)

    def add(self, t: float, values: np.ndarray, emitted: float) -> None:
        self.t.append(float(t))
        self.values.append(np.asarray(values, dtype=np.float32))
        self.emitted.append(float(emitted))

    def last_t(self) -> float:
        return self.t[-1] if self.t else -math.inf


def face_track(msgs: list[Any], rig: Rig, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """FaceCoefficients messages -> (stamps (N,), values (N, C) in `rig` order), stamp-sorted."""
    rigs_seen = {str(m.rig) for m in msgs}
    if rigs_seen - {rig.name}:
        raise ValueError(f"{topic} is in rig {sorted(rigs_seen)} but the model outputs "
                         f"{rig.name!r}: evaluate with a {sorted(rigs_seen)[0]} model")
    stamps, rows = [], []
    for msg in msgs:
        try:
            values, names, t = messages.face(msg)
            row, _ = to_rig_order(rig.name, names, values)
        except ValueError as exc:  # the node drops such a message; so does the scoring
            log.warning("%s: bad message stamped %.3f s skipped: %s", topic,
                        messages.stamp_to_s(msg.header.stamp), exc)
            continue
        stamps.append(t)
        rows.append(row)
    if not rows:
        raise ValueError(f"{topic}: no usable FaceCoefficients message")
    order = np.argsort(stamps, kind="stable")
    return np.asarray(stamps)[order], np.stack(rows)[order]


def align(src_t: np.ndarray, src_v: np.ndarray,
          dst_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M,), (M, C) on one grid -> (N, C) interpolated at `dst_t` (N,), (N,) covered mask.

    Times are relative seconds (subtract a base first: float64 near 1.7e9 s keeps only 0.2 us).
    """
    if len(src_t) == 0:
        raise ValueError("no predicted frames to align")
    hi = np.clip(np.searchsorted(src_t, dst_t), 0, len(src_t) - 1)
    lo = np.clip(hi - 1, 0, len(src_t) - 1)
    lo = np.where(src_t[hi] <= dst_t, hi, lo)  # an exact or later-than-last stamp: use hi
    span = src_t[hi] - src_t[lo]
    w = np.where(span > 0, (dst_t - src_t[lo]) / np.where(span > 0, span, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)[:, None]
    out = (1.0 - w) * src_v[lo] + w * src_v[hi]  # (N, C)
    near = np.minimum(np.abs(dst_t - src_t[lo]), np.abs(dst_t - src_t[hi]))
    inside = (src_t[lo] <= dst_t) & (dst_t <= src_t[hi]) & (span <= 1.5 * FRAME_S)
    covered = (near <= FRAME_S / 2 + 1e-6) | inside
    return out.astype(np.float32), covered


def _percentiles_ms(x: np.ndarray) -> dict[str, float | int | None]:
    if not len(x):
        return {"count": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    p50, p95, p99 = (float(1e3 * np.percentile(x, q)) for q in (50, 95, 99))
    return {"count": int(len(x)), "p50": p50, "p95": p95, "p99": p99,
            "mean": float(1e3 * x.mean()), "max": float(1e3 * x.max())}


def _strict(row: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """NaN (an undefined rPCC) -> None, so metrics.json is strict JSON."""
    return {g: {k: (float(v) if math.isfinite(v) else None) for k, v in vals.items()}
            for g, vals in row.items()}


def _pose_error_deg(inputs: BagInputs, pred_t: np.ndarray, pred_v: np.ndarray,
                    rig: Rig, base: float) -> dict[str, float | int | None]:
    """Angle between the predicted head rotation and /ground_truth/head_pose at its stamps."""
    msgs = inputs.data["gt_pose"].msgs
    t = np.array([messages.stamp_to_s(m.header.stamp) for m in msgs]) - base
    q_gt = np.array([[m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                      m.pose.orientation.w] for m in msgs], dtype=np.float64)
    values, _ = align(pred_t, pred_v, t)
    q_pred = rig.head_quaternion(values)  # (N, 4)
    q_gt /= np.maximum(np.linalg.norm(q_gt, axis=1, keepdims=True), 1e-12)
    dot = np.clip(np.abs(np.sum(q_gt * q_pred, axis=1)), 0.0, 1.0)
    angle = np.degrees(2.0 * np.arccos(dot))
    return {"count": int(len(angle)), "mean": float(angle.mean()),
            "p95": float(np.percentile(angle, 95))}


def score(inputs: BagInputs, preds: Predictions) -> dict[str, Any]:
    """Metrics, frame counts and latencies of `preds` against the bag's ground truth."""
    rig = preds.rig
    gt_t, gt_v = face_track(inputs.data["gt_face"].msgs, rig, inputs.topics.gt_face)
    if len(gt_t) < max(metrics.SID_K.values()):
        raise ValueError(f"{inputs.topics.gt_face} has {len(gt_t)} frames; the metrics need at "
                         f"least {max(metrics.SID_K.values())} (1.6 s at 25 fps)")
    base = math.floor(gt_t[0])
    order = np.argsort(preds.t, kind="stable")
    pred_t = np.asarray(preds.t)[order] - base
    pred_v = np.stack(preds.values)[order] if preds.values else np.zeros((0, rig.dim))
    aligned, covered = align(pred_t, pred_v, gt_t - base)
    partner_t, partner_v = face_track(inputs.data["partner_face"].msgs, rig,
                                      inputs.topics.partner_face)
    partner, _ = align(partner_t - base, partner_v, gt_t - base)
    used = (pred_t >= gt_t[0] - base - FRAME_S) & (pred_t <= gt_t[-1] - base + FRAME_S)
    latency = (np.asarray(preds.emitted)[order] - np.asarray(preds.t)[order])[used]
    return {
        # predicted: ground-truth frames with predictions around them; emitted: output frames.
        "frames": {"ground_truth": int(len(gt_t)), "predicted": int(covered.sum()),
                   "emitted": int(len(pred_t)), "held_at_edges": int((~covered).sum())},
        "metrics": _strict(metrics.evaluate_clip(aligned, gt_v, partner, rig)),
        "head_pose_error_deg": _pose_error_deg(inputs, pred_t, pred_v, rig, base),
        "latency_ms": _percentiles_ms(latency),
        "alignment": "linear interpolation of the two 25 fps predicted frames around each "
                     "ground-truth stamp (exact where the grids coincide); edge frame held "
                     "outside the predicted span (not counted as predicted)",
    }


def input_summary(inputs: BagInputs) -> dict[str, Any]:
    """Per topic: type, message count and stream shape (rate, chunk size)."""
    out: dict[str, Any] = {}
    for kind, data in inputs.data.items():
        stamps = np.array([messages.stamp_to_s(m.header.stamp) for m in data.msgs])
        entry: dict[str, Any] = {"topic": data.topic, "type": data.msgtype,
                                 "messages": len(data.msgs),
                                 "first_stamp_s": float(stamps.min()),
                                 "duration_s": float(stamps.max() - stamps.min())}
        if kind.endswith("audio"):
            first = data.msgs[0]
            entry.update(sample_rate=int(first.sample_rate), encoding=str(first.encoding),
                         chunk_bytes=len(first.data), channels=int(first.channels))
        elif len(stamps) > 1:
            entry["rate_hz"] = float(1.0 / np.median(np.diff(np.sort(stamps))))
        out[kind] = entry
    return out


def first_log_s(inputs: BagInputs) -> float:
    return min(d.log_ns[0] for d in inputs.data.values()) / NS
