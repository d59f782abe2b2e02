"""The fuzzer's figures, goals and one-line verdict, from what it sent and what the probe saw.

Figures over the hostile stream's window [start, end) (receive times of the probe), which
begins after a warm-up of valid conversation only (see `fuzz_cli.WARMUP_S`):
- rate: faces received in each whole 1 s bin; the figure is the smallest bin.
- jitter: |gap between consecutive faces received - 40 ms|, 99th percentile, in ms.
- crashes: the node's process exiting before it is stopped (or never reporting), plus every
  span of at least STALL_S with no face or no /diagnostics (overlapping spans count once) from
  the start of the warm-up to the end of settling: a node that stops publishing is as good as
  dead to a robot.
- nan: published faces with a non-finite value or |value| > 10, plus head poses not finite or
  with a quaternion norm off 1 by more than 1e-3 (counted by the probe).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dualtalk_core.units import FRAME_S
from dualtalk_ros.fuzzing.counter_check import as_records, check_counters

STALL_S = 2.0
WORST_GAPS = 10
NOTABLE_BEFORE_S = 1.5
GOALS = {"messages": 10_000, "crashes": 0, "min_rate_fps": 24.0, "jitter_p99_ms": 10.0,
         "rss_growth_mib": 20.0, "nan": 0}


@dataclass
class Accounting:
    """What the fuzzer sent: per input kind, per label, and which were invalid (and why);
    `messages` (the verdict's N) leaves out the warm-up's valid messages."""

    sent: dict[str, int] = field(default_factory=dict)
    sent_invalid: dict[str, int] = field(default_factory=dict)
    by_label: dict[str, int] = field(default_factory=dict)
    invalid_by_label: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    warmup: int = 0
    # (time, what): heavy messages sent and the voices' pauses, to explain the worst gaps
    notable: list[tuple[float, str]] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(self.sent.values()) - self.warmup

    def add(self, kind: str, label: str, reason: str | None, warmup: bool = False) -> None:
        self.warmup += warmup
        self.sent[kind] = self.sent.get(kind, 0) + 1
        self.by_label[label] = self.by_label.get(label, 0) + 1
        if reason is not None:
            self.sent_invalid[kind] = self.sent_invalid.get(kind, 0) + 1
            self.invalid_by_label[label] = self.invalid_by_label.get(label, 0) + 1
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass
class Window:
    """Times (time.time()) of the run: warm-up from warmup_s, the hostile stream
    [start_s, end_s), settled by settled_s."""

    start_s: float
    end_s: float
    settled_s: float
    warmup_s: float


def face_rate(received: np.ndarray, start_s: float, end_s: float) -> list[int]:
    """Faces received in each whole 1 s bin of [start_s, end_s)."""
    bins = max(0, int(math.floor(end_s - start_s)))
    inside = received[(received >= start_s) & (received < start_s + bins)]
    return np.bincount((inside - start_s).astype(int), minlength=bins)[:bins].tolist()


def jitter_p99_ms(received: np.ndarray, start_s: float, end_s: float) -> float:
    """99th percentile of |gap between consecutive faces received - 40 ms|, in ms."""
    inside = np.sort(received[(received >= start_s) & (received < end_s)])
    if inside.size < 2:
        return float("inf")
    return float(np.percentile(1e3 * np.abs(np.diff(inside) - FRAME_S), 99))


def silences(times: np.ndarray, start_s: float, end_s: float) -> list[list[float]]:
    """[from, to] of every span of at least STALL_S in [start_s, end_s] with no message."""
    inside = np.sort(times[(times >= start_s) & (times <= end_s)])
    edges = np.concatenate([[start_s], inside, [end_s]])
    return [[float(edges[i]), float(edges[i + 1])]
            for i in np.flatnonzero(np.diff(edges) >= STALL_S)]


def merged(spans: list[list[float]]) -> list[list[float]]:
    """Overlapping [from, to] spans joined."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def worst_gaps(received: np.ndarray, window: Window, notable: list[tuple[float, str]],
               n: int = WORST_GAPS) -> list[dict[str, Any]]:
    """The `n` longest gaps between faces in the window, each with the notable events (heavy
    messages, voice pauses) of the NOTABLE_BEFORE_S before it ended: where to look when jitter
    or rate miss their goal."""
    inside = np.sort(received[(received >= window.start_s) & (received < window.end_s)])
    gaps = np.diff(inside)
    out = []
    for i in np.argsort(gaps)[::-1][:n]:
        end = inside[i + 1]
        out.append({"at_s": round(float(inside[i] - window.start_s), 3),
                    "gap_ms": round(1e3 * float(gaps[i]), 1),
                    "notable_before": [label for t, label in notable
                                       if end - NOTABLE_BEFORE_S <= t <= end]})
    return out


def build_report(sent: Accounting, record: dict[str, Any], window: Window,
                 rss_mib: tuple[float, float], node_failed: bool) -> dict[str, Any]:
    """Every figure of one run, the goals each meets, and the verdict line; `node_failed`:
    the node exited before it was stopped (or never came up), one crash."""
    faces = np.array([r for r, _ in record.get("faces", [])], dtype=np.float64)
    diag = np.array([r for r, _ in record.get("diagnostics", [])], dtype=np.float64)
    stalls = merged(silences(faces, window.warmup_s, window.settled_s)
                    + silences(diag, window.warmup_s, window.settled_s))
    rate = face_rate(faces, window.start_s, window.end_s)
    checks = check_counters(record.get("last_values", {}), sent.sent, sent.sent_invalid)
    report = {
        "messages": sent.messages, "crashes": int(node_failed) + len(stalls),
        "stalls": stalls,
        "min_rate_fps": float(min(rate)) if rate else 0.0, "rate_per_s": rate,
        "jitter_p99_ms": jitter_p99_ms(faces, window.start_s, window.end_s),
        "worst_gaps": worst_gaps(faces, window, sent.notable),
        "rss_start_mib": rss_mib[0], "rss_end_mib": rss_mib[1],
        "rss_growth_mib": rss_mib[1] - rss_mib[0],
        "nan": int(record.get("bad_faces", 0)) + int(record.get("bad_poses", 0)),
        "bad_faces": record.get("bad_faces", 0), "bad_poses": record.get("bad_poses", 0),
        "bad_examples": record.get("bad_examples", []),
        "counters_ok": bool(checks) and all(c.ok for c in checks),
        "counter_checks": as_records(checks),
        "faces_received": int(faces.size), "diagnostics_received": int(diag.size),
        "sent": sent.sent, "sent_invalid": sent.sent_invalid, "sent_by_label": sent.by_label,
        "invalid_by_label": sent.invalid_by_label, "invalid_reasons": sent.reasons,
        "warmup_messages": sent.warmup, "warmup_s": window.start_s - window.warmup_s,
        "publish_s": window.end_s - window.start_s,
        "final_diagnostics": record.get("last_values", {}),
        "final_message": record.get("last_message", ""),
    }
    report["goals"] = goals(report)
    report["line"] = summary_line(report)
    return report


def goals(report: dict[str, Any]) -> dict[str, bool]:
    """Each goal of issue 24 and whether this run meets it."""
    return {"messages": report["messages"] >= GOALS["messages"],
            "crashes": report["crashes"] == GOALS["crashes"],
            "min_rate_fps": report["min_rate_fps"] >= GOALS["min_rate_fps"],
            "jitter_p99_ms": report["jitter_p99_ms"] <= GOALS["jitter_p99_ms"],
            "rss_growth_mib": report["rss_growth_mib"] <= GOALS["rss_growth_mib"],
            "nan": report["nan"] == GOALS["nan"],
            "counters": report["counters_ok"]}


def summary_line(report: dict[str, Any]) -> str:
    return (f"fuzz: {report['messages']} messages, {report['crashes']} crashes, min rate "
            f"{report['min_rate_fps']:.1f} fps, jitter p99 {report['jitter_p99_ms']:.1f} ms, "
            f"rss growth {report['rss_growth_mib']:.1f} MiB, nan {report['nan']}, counters "
            f"{'ok' if report['counters_ok'] else 'bad'}")
