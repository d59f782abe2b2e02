"""Node health: what happened to every input message, and a /diagnostics level that means it.

Every message a subscription takes is counted once as received and once in what became of it
(`inbox_overflow`, `invalid` or `accepted`; the engine's own stats say what it did with the
accepted ones), so a reader can account for each one. The level reflects the last report
period, not history: a burst of bad input a minute ago is in the counters, not in today's WARN.
Categories, from the period's counts and the inputs' ages:
- bad input (invalid messages, and accepted ones the engine dropped: out of order, late,
  duplicate, stamp glitches): WARN;
- late frames (computed after their slot) and overload (receive queue overflow, skipped hops,
  inference near or over the hop): WARN, ERROR when hops are skipped;
- NaN guarded (the model produced non-finite values) and inference errors: ERROR;
- stale input: an audio input silent for input_stale_s since the node started, or a partner face
  that stopped arriving (no face tracker at all is a supported set-up, not a fault): WARN.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.time import Time

from dualtalk_ros.bridge.input_dispatch import INFO_KINDS, INPUT_KINDS as INPUTS, RAW_KINDS
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.bridge.output_pacing import PacingReport

AUDIO_INPUTS = ("self_audio", "partner_audio")
# Engine stats of accepted input it could not use: bad input as surely as an invalid message.
ENGINE_DROPS = ("duplicate_chunks", "out_of_order_chunks", "late_chunks", "overflow_chunks",
                "outlier_chunks", "duplicate_faces", "out_of_order_faces", "too_old_faces",
                "overflow_faces", "outlier_faces")
ERRORS = ("nan_guarded", "inference_error", "model_swap_failed")
OVERLOAD = ("inbox_overflow", "skipped_hops")
MESSAGE_FATES = ("received", "inbox_overflow", "invalid", "accepted")


class NodeHealth:
    """Thread-safe counters behind /diagnostics; each problem kind is logged once, then counted."""

    def __init__(self, node: Node, settings: Callable[[], DualTalkNodeSettings],
                 hop_s: float) -> None:
        """`settings` is read at each report: thresholds may change while running."""
        self.node, self.settings, self.hop_s = node, settings, hop_s
        self.lock = threading.Lock()
        # since start: 'received.self_audio', ...; every message counter is shown from the
        # first report, zeros included, so a reader can account for each message
        self.counts: Counter[str] = Counter()
        for kind in INPUTS + RAW_KINDS + INFO_KINDS:
            for fate in MESSAGE_FATES:
                self.counts[f"{fate}.{kind}"] = 0
        for key in ("skipped_hops", "late_frames", "inference_error", "clock_jumps",
                    "muted_frames", "model_swap_failed"):
            self.counts[key] = 0
        self._logged: set[str] = set()
        self._at_last_report: Counter[str] = Counter()
        self.last_stamp: dict[str, float] = {}
        self.started_s: float | None = None  # node clock of the first report
        self.window: list[float] = []  # inference seconds of hops since the last report

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def problem(self, kind: str, message: str, count: int = 1, key: str | None = None) -> None:
        """Count `count` of `key` (default: `kind`); log `message` the first time of `kind`."""
        with self.lock:
            self.counts[key or kind] += count
            first = kind not in self._logged
            self._logged.add(kind)
        if first:
            self.node.get_logger().warning(f"{message} (further '{kind}' are only counted in "
                                           "/diagnostics)")

    def input_seen(self, kind: str, stamp_s: float) -> None:
        with self.lock:
            self.last_stamp[kind] = max(stamp_s, self.last_stamp.get(kind, stamp_s))

    def clock_jumped(self) -> None:
        """ROS time went back (a bag replay restarted): input ages start over."""
        with self.lock:
            self.last_stamp.clear()
            self.started_s = None
            self.counts["clock_jumps"] += 1

    def hop_done(self, seconds: float, n_frames: int) -> None:
        """One step of the engine; its time counts toward the inference figures only when it
        computed frames (steps woken by audio often have none ready)."""
        with self.lock:
            self.counts["hops"] += 1
            self.counts["frames_computed"] += n_frames
            if n_frames:
                self.window.append(seconds)

    def report_idle(self, now: Time, state: str, message: str) -> DiagnosticArray:
        """Not active (by a lifecycle request): OK, saying so; nothing is expected of it."""
        with self.lock:
            self.started_s = None  # input ages count from activation
            values = {k: str(v) for k, v in sorted(self.counts.items())}
        values["lifecycle_state"] = state
        return self._array(now, DiagnosticStatus.OK, f"{state}: {message}", values, "")

    def report(self, now: Time, engine: Any, pacing: PacingReport,
               extra: dict[str, Any] | None = None) -> DiagnosticArray:
        """The period's report; `extra` values (lifecycle state, outputs, joints) are shown as
        given. A muted node is OK when nothing else is wrong: it is muted by request."""
        now_s = now.nanoseconds * 1e-9
        engine_stats = engine.stats.as_dict()
        with self.lock:
            if self.started_s is None:
                self.started_s = now_s
            window, self.window = self.window, []
            totals = Counter(self.counts)
            totals.update({k: v for k, v in engine_stats.items() if type(v) is int})
            # max(0, ...): the engine's counters start over with a new stream (clock jump)
            period = Counter({k: max(0, v - self._at_last_report[k])
                              for k, v in totals.items()})
            self._at_last_report = totals
            values = self._values(now_s, window, engine, engine_stats)
            level, message = self._level(now_s, window, period)
        values.update(_pacing_values(pacing))
        values.update({k: str(v) for k, v in (extra or {}).items()})
        if (extra or {}).get("outputs") == "muted" and level == DiagnosticStatus.OK:
            message = "muted (enable service): no output"
        return self._array(now, level, message, values, str(engine.model.device))

    def _array(self, now: Time, level: bytes, message: str, values: dict[str, str],
               hardware_id: str) -> DiagnosticArray:
        status = DiagnosticStatus(level=level, name=f"{self.node.get_name()}: dualtalk",
                                  hardware_id=hardware_id, message=message,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = now.to_msg()
        return array

    def _values(self, now_s: float, window: list[float], engine: Any,
                engine_stats: dict[str, Any]) -> dict[str, str]:
        out = {f"age_{k}_s": (f"{now_s - self.last_stamp[k]:.3f}" if k in self.last_stamp
                              else "never") for k in INPUTS}
        if window:
            out["inference_ms_mean"] = f"{1e3 * sum(window) / len(window):.1f}"
            out["inference_ms_max"] = f"{1e3 * max(window):.1f}"
        # `model` comes with the node's extra values: the running one, even during a swap
        out.update(device=str(engine.model.device), rig=engine.rig.name,
                   lookahead_ms=f"{engine.lookahead_ms:.0f}")
        out.update({k: str(v) for k, v in sorted(self.counts.items())})
        for key, value in engine_stats.items():
            out[key if "." in key else f"engine.{key}"] = str(value)
        return out

    def _level(self, now_s: float, window: list[float],
               period: Counter[str]) -> tuple[bytes, str]:
        """The worst level of the last period, and every reason for it."""
        limits = self.settings().diagnostics
        errors, warns = [], []
        for key in ERRORS:  # counted by the node (inference_error) or the engine (nan_guarded)
            if period[key]:
                errors.append(f"{key.replace('_', ' ')}: {period[key]}")
        worst = max(window, default=0.0) / self.hop_s
        overload = {k: sum(v for p, v in period.items() if p.split(".")[0] == k)
                    for k in OVERLOAD}
        if worst > limits.inference_error_ratio or overload["skipped_hops"]:
            errors.append(f"overload: inference {worst:.2f} x the hop, "
                          f"{overload['skipped_hops']} hop(s) skipped")
        elif worst > limits.inference_warn_ratio or overload["inbox_overflow"]:
            warns.append(f"overload: inference {worst:.2f} x the hop, "
                         f"{overload['inbox_overflow']} message(s) dropped unread")
        bad = sum(v for k, v in period.items() if k.startswith("invalid.")
                  or k.rsplit(".", 1)[-1] in ENGINE_DROPS)
        if bad:
            warns.append(f"bad input: {bad} message(s) dropped")
        if period["late_frames"]:
            warns.append(f"late frames: {period['late_frames']} published after their slot")
        stale = self._stale(now_s, limits.input_stale_s)
        if stale:
            warns.append(f"stale input: {', '.join(stale)} (silence / held face used)")
        level = (DiagnosticStatus.ERROR if errors else
                 DiagnosticStatus.WARN if warns else DiagnosticStatus.OK)
        return level, "; ".join(errors + warns) or "ok"

    def _stale(self, now_s: float, stale_s: float) -> list[str]:
        """Audio inputs older than stale_s (or never seen once the node has run that long), and
        a partner face that was arriving and stopped."""
        running = self.started_s is not None and now_s - self.started_s > stale_s
        out = []
        for kind in INPUTS:
            seen = self.last_stamp.get(kind)
            if seen is None:
                if running and kind in AUDIO_INPUTS:
                    out.append(f"{kind} (never received)")
            elif now_s - seen > stale_s:
                out.append(f"{kind} ({now_s - seen:.1f} s old)")
        return out


def _pacing_values(pacing: PacingReport) -> dict[str, str]:
    """The output's timing: the delay in force (the pipeline delay) and what was measured."""
    def ms(value: float | None) -> str:
        return "none yet" if value is None else f"{value:.1f}"

    return {"output_delay_ms": ms(pacing.delay_ms),
            "output_delay_mode": "derived" if pacing.derived else "fixed",
            "required_delay_ms": ms(pacing.required_ms),
            "frame_latency_p50_ms": ms(pacing.latency_p50_ms),
            "frame_latency_p99_ms": ms(pacing.latency_p99_ms),
            "arrival_lateness_p99_ms": ms(pacing.arrival_lateness_ms),
            "input_wait_cap_ms": ("none (fixed delay)" if pacing.wait_cap_ms is None
                                  else ms(pacing.wait_cap_ms))}
