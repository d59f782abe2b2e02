"""Offline bag evaluation: the bag's inputs, with their stamps, through the node's engine.

No rclpy: the engine and the message dispatch are the node's own (`bridge.input_dispatch`,
built from the node's default settings). Messages go to `StreamingEngine` in log-time order;
after each instant of log time the engine is stepped with `now` = that log time, as the node's
worker would at that ROS time. Each frame's emission time is the `now` that produced it. After
the last message, `now` keeps advancing by one hop (the node's timer) until the frames reach
the ground truth's end, then `flush()`. A message the node would drop (malformed, out of
range, mis-stamped) is dropped here too, logged with its topic and log time and counted; the
replay goes on.
"""
from __future__ import annotations

import logging
import time

from dualtalk_core.streaming import Frame, StreamingEngine
from dualtalk_ros.bag.bag_files import NS
from dualtalk_ros.bag.bag_scoring import BagInputs, Predictions
from dualtalk_ros.bridge.input_dispatch import InputDispatcher
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

log = logging.getLogger(__name__)

MAX_TAIL_S = 10.0  # give up waiting for the last frames this long after the last message
LOGGED_PER_TOPIC = 5  # bad messages logged one by one per topic; the rest are only counted


class DroppedInputs:
    """Input messages the dispatch refused: counted per kind, the first few logged in full."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: list[dict[str, object]] = []

    def add(self, kind: str, topic: str, log_s: float, reason: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= LOGGED_PER_TOPIC:
            log.warning("%s: bad input message at log time %.3f s dropped: %s", topic, log_s,
                        reason)
            self.first.append({"topic": topic, "log_time_s": log_s, "reason": reason})


def node_engine(model: str | None = None, device: str | None = None) -> StreamingEngine:
    """The engine the node builds with its default parameters (`DualTalkNodeSettings`)."""
    node = DualTalkNodeSettings()
    return StreamingEngine.load(model or node.model or None, node.stream,
                                device=device or node.device)


def run_offline(inputs: BagInputs, engine: StreamingEngine) -> tuple[Predictions, dict]:
    """Feed the bag through `engine`; returns the predictions and run statistics."""
    engine.reset()
    preds = Predictions(engine.rig)
    inputs_cfg = DualTalkNodeSettings().inputs
    dispatch = InputDispatcher(engine, lambda: inputs_cfg.max_clock_skew_s)

    def collect(frames: list[Frame], now: float) -> None:
        for frame in frames:
            preds.add(frame.t, frame.values, now)

    dropped = DroppedInputs()
    started = time.perf_counter()
    events = inputs.input_events()
    for j, (log_ns, kind, index) in enumerate(events):
        try:  # as the node's worker would, at this log time
            dispatch.push(kind, inputs.data[kind].msgs[index], log_ns / NS, log_ns / NS)
        except (ValueError, TypeError) as exc:
            dropped.add(kind, inputs.data[kind].topic, log_ns / NS, str(exc))
        if j + 1 == len(events) or events[j + 1][0] > log_ns:  # the last message of an instant
            collect(engine.step(log_ns / NS), log_ns / NS)
    now = events[-1][0] / NS
    target, hop_s = inputs.output_target_s(), engine.config.hop_ms / 1000.0
    last = now
    while preds.last_t() < target - 1e-6 and now < last + MAX_TAIL_S:
        now += hop_s
        collect(engine.step(now), now)
    collect(engine.flush(), now)
    wall_s = time.perf_counter() - started
    stats = {"wall_s": wall_s, "dropped_messages": dropped.counts,
             "first_dropped": dropped.first, "engine": engine.stats.as_dict()}
    log.info("offline: %d frames in %.2f s wall", len(preds.t), wall_s)
    return preds, stats
