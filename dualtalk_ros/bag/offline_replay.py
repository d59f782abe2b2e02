"""Offline bag evaluation: the bag's inputs, with their stamps, through the node's engine.

Messages go to `StreamingEngine` in log-time order; after each instant of log time the engine
is stepped with `now` = that log time, as the node's worker would at that ROS time. Each frame's
emission time is the `now` that produced it. After the last message, `now` keeps advancing by
one hop (the node's timer) until the frames reach the ground truth's end, then `flush()`.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from dualtalk_core.streaming.engine import Frame, StreamConfig, StreamingEngine
from dualtalk_ros.bridge import messages
from dualtalk_ros.bag.bag_files import NS
from dualtalk_ros.bag.bag_scoring import BagInputs, Predictions

log = logging.getLogger(__name__)

MAX_TAIL_S = 10.0  # give up waiting for the last frames this long after the last message


def node_stream_config(device: str | None = None) -> StreamConfig:
    """The node's `stream.*` defaults from config/dualtalk.yaml (one place for defaults)."""
    from dualtalk_ros.nodes import ros_parameters
    from dualtalk_ros.nodes.dualtalk_node import stream_config

    values = ros_parameters.defaults("dualtalk_node")
    return stream_config(values, device or str(values["device"]))


def push(engine: StreamingEngine, kind: str, msg: Any) -> None:
    """One bag message into the engine (ValueError for a malformed message)."""
    if kind == "partner_face":
        values, names, t = messages.face(msg)
        engine.push_partner_face(values, names, t)
        return
    samples, rate, t = messages.audio_chunk(msg)
    if kind == "self_audio":
        engine.push_self_audio(samples, rate, t)
    else:
        engine.push_partner_audio(samples, rate, t)


def run_offline(inputs: BagInputs, engine: StreamingEngine) -> tuple[Predictions, dict]:
    """Feed the bag through `engine`; returns the predictions and run statistics."""
    engine.reset()
    preds = Predictions(engine.rig)

    def collect(frames: list[Frame], now: float) -> None:
        for frame in frames:
            preds.add(frame.t, frame.values, now)

    dropped: dict[str, int] = {}
    started = time.perf_counter()
    events = inputs.input_events()
    for j, (log_ns, kind, index) in enumerate(events):
        try:
            push(engine, kind, inputs.data[kind].msgs[index])
        except (ValueError, TypeError) as exc:
            if kind not in dropped:
                log.warning("%s: dropping malformed messages: %s", inputs.data[kind].topic, exc)
            dropped[kind] = dropped.get(kind, 0) + 1
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
    stats = {"wall_s": wall_s, "dropped_messages": dropped,
             "engine": engine.stats.as_dict()}
    log.info("offline: %d frames in %.2f s wall", len(preds.t), wall_s)
    return preds, stats
