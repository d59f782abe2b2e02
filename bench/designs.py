"""The two streaming designs the benchmarks compare, side by side in one run.

- `windowed`: what the node runs by default today: the shipped model (no bounded attention
  span) re-run over the node's window every hop (`WindowedStepper`), the node's StreamConfig.
- `incremental`: the lite preset with `attention_span_frames` = SPAN_FRAMES (the shipped
  model's architecture plus a bounded span), each new 40 ms frame computed once from cached
  layer state (`IncrementalStepper`, picked automatically for such a model). The engine rows
  use the node's StreamConfig at hop 40 ms (the stepper emits frames one by one anyway); the
  node rows run the node's defaults with only `model:=<folder>` of such a saved model.
Weights are random for the preset (or the shipped model's): the cost does not depend on them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import model_source
from dualtalk_core.units import FRAME_MS
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

if TYPE_CHECKING:
    from dualtalk_core.model import DualTalkModel
    from dualtalk_core.streaming import StreamConfig

DESIGNS = ("windowed", "incremental")
SPAN_FRAMES = 200  # the incremental design's attention span (8 s at 25 fps)
NODE = DualTalkNodeSettings()
LABELS = {"windowed": "shipped model as the node runs it (node default)",
          "incremental": f"lite + attention span {SPAN_FRAMES} frames"}


def design_model(design: str) -> DualTalkModel:
    """The model a design streams, on the CPU, in eval mode."""
    from dualtalk_core.model import PRESETS, DualTalkModel

    if design == "incremental":
        return DualTalkModel.from_preset("lite", fast_init=True, device="cpu",
                                         attention_span_frames=SPAN_FRAMES).eval()
    if design != "windowed":
        raise ValueError(f"unknown design {design!r}; expected one of {DESIGNS}")
    source = model_source()
    if source in PRESETS:
        return DualTalkModel.from_preset(source, fast_init=True, device="cpu").eval()
    return DualTalkModel.load(source, device="cpu").eval()


def design_stream(design: str) -> StreamConfig:
    """The node's StreamConfig; at hop 40 ms (one frame) for the incremental design."""
    if design == "incremental":
        return dataclasses.replace(NODE.stream, hop_ms=FRAME_MS)
    return dataclasses.replace(NODE.stream)


def save_incremental_model(folder: str | Path) -> Path:
    """`from_preset("lite", attention_span_frames=SPAN_FRAMES)` saved into `folder`, for the
    node's `model` parameter."""
    from dualtalk_core.model import DualTalkModel

    model = DualTalkModel.from_preset("lite", device="cpu", attention_span_frames=SPAN_FRAMES)
    return model.save(folder)


def model_name(design: str) -> str:
    """What a design's rows name as their model."""
    return model_source() if design == "windowed" else f"lite preset + span {SPAN_FRAMES}"
