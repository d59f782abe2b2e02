"""Node health: counters, log-once problem reports and the /diagnostics status with thresholds."""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.time import Time

from dualtalk_ros.bridge.input_dispatch import INPUT_KINDS as INPUTS
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.bridge.output_pacing import PacingReport


class NodeHealth:
    """Thread-safe counters behind /diagnostics; each problem kind is logged once, then counted."""

    def __init__(self, node: Node, settings: Callable[[], DualTalkNodeSettings],
                 hop_s: float) -> None:
        """`settings` is read at each report: thresholds may change while running."""
        self.node, self.settings, self.hop_s = node, settings, hop_s
        self.lock = threading.Lock()
        self.problems: Counter[str] = Counter()
        self.last_stamp: dict[str, float] = {}
        self.skipped_hops = 0
        self.frames = 0
        self.hops = 0
        self.window: list[float] = []  # inference seconds of hops since the last report

    def problem(self, kind: str, message: str, count: int = 1) -> None:
        with self.lock:
            first = self.problems[kind] == 0
            self.problems[kind] += count
        if first:
            self.node.get_logger().warning(f"{message} (further '{kind}' are only counted in "
                                           "/diagnostics)")

    def input_seen(self, kind: str, stamp_s: float) -> None:
        with self.lock:
            self.last_stamp[kind] = max(stamp_s, self.last_stamp.get(kind, stamp_s))

    def hop_done(self, seconds: float, n_frames: int) -> None:
        """One step of the engine; its time counts toward the inference figures only when it
        computed frames (steps woken by audio often have none ready)."""
        with self.lock:
            self.hops += 1
            self.frames += n_frames
            if n_frames:
                self.window.append(seconds)

    def report(self, now: Time, engine: Any, pacing: PacingReport) -> DiagnosticArray:
        now_s = now.nanoseconds * 1e-9
        with self.lock:
            window, self.window = self.window, []
            values = self._values(now_s, window, engine)
            values.update(_pacing_values(pacing))
            level, message = self._level(now_s, window)
        status = DiagnosticStatus(level=level, name=f"{self.node.get_name()}: dualtalk",
                                  hardware_id=str(engine.model.device), message=message,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = now.to_msg()
        return array

    def _values(self, now_s: float, window: list[float], engine: Any) -> dict[str, str]:
        out = {f"age_{k}_s": (f"{now_s - self.last_stamp[k]:.3f}" if k in self.last_stamp
                              else "never") for k in INPUTS}
        if window:
            out["inference_ms_mean"] = f"{1e3 * sum(window) / len(window):.1f}"
            out["inference_ms_max"] = f"{1e3 * max(window):.1f}"
        out.update(hops=str(self.hops), skipped_hops=str(self.skipped_hops),
                   frames_computed=str(self.frames), device=str(engine.model.device),
                   model=self.settings().model or "default", rig=engine.rig.name,
                   lookahead_ms=f"{engine.lookahead_ms:.0f}")
        out.update({f"dropped_{k}": str(v) for k, v in sorted(self.problems.items())})
        for group, counts in engine.stats.as_dict().items():
            if isinstance(counts, dict):
                out.update({f"{group}.{k}": str(v) for k, v in counts.items()})
            else:
                out[f"engine.{group}"] = str(counts)
        return out

    def _level(self, now_s: float, window: list[float]) -> tuple[bytes, str]:
        """The worst level, and every reason for it (an operator needs all of them)."""
        worst = max(window, default=0.0) / self.hop_s
        limits = self.settings().diagnostics
        stale = [k for k in INPUTS if now_s - self.last_stamp.get(k, -1e18)
                 > limits.input_stale_s]
        level, reasons = DiagnosticStatus.OK, []
        if worst > limits.inference_error_ratio:
            level = DiagnosticStatus.ERROR
            reasons.append(f"inference {worst:.2f} x the hop: skipping hops")
        elif worst > limits.inference_warn_ratio:
            level = DiagnosticStatus.WARN
            reasons.append(f"inference {worst:.2f} x the hop")
        if stale:
            level = max(level, DiagnosticStatus.WARN)
            reasons.append(f"stale or missing input: {', '.join(stale)} (silence / neutral "
                           "face used)")
        if self.problems:
            level = max(level, DiagnosticStatus.WARN)
            reasons.append(f"dropped bad input: {dict(self.problems)}")
        return level, "; ".join(reasons) or "ok"


def _pacing_values(pacing: PacingReport) -> dict[str, str]:
    """The output's timing: the delay in force (the pipeline delay) and what was measured."""
    def ms(value: float | None) -> str:
        return "none yet" if value is None else f"{value:.1f}"

    return {"output_delay_ms": ms(pacing.delay_ms),
            "output_delay_mode": "derived" if pacing.derived else "fixed",
            "required_delay_ms": ms(pacing.required_ms),
            "frame_latency_p50_ms": ms(pacing.latency_p50_ms),
            "frame_latency_p99_ms": ms(pacing.latency_p99_ms)}
