"""The two streaming designs the benchmarks compare, side by side in one run, on one model.

- `incremental`: the node's defaults. The shipped model has a bounded attention span, so the
  engine computes each new 40 ms frame once from cached layer state (`IncrementalStepper`).
- `windowed`: the same model re-run over the node's 8 s window every 80 ms hop
  (`stream.stepper: windowed`, `stream.hop_ms: 80`): the design the node ran before the
  incremental one, and the only one for networks without a span (the official network).
The node rows pass exactly those two parameters for `windowed` and none for `incremental`.
Without a shipped model (a bare checkout) both stream the lite preset with a span and random
weights: the cost does not depend on the weights.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from bench.common import model_source
from dualtalk_core.model import DEFAULT_MODEL_DIR
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

if TYPE_CHECKING:
    from dualtalk_core.model import DualTalkModel
    from dualtalk_core.streaming import StreamConfig

DESIGNS = ("windowed", "incremental")
WINDOWED: dict[str, Any] = {"stepper": "windowed", "hop_ms": 80.0}  # stream.* overrides
PRESET_SPAN_FRAMES = 100  # the preset stand-in's span (the shipped model's)
NODE = DualTalkNodeSettings()
LABELS = {"windowed": "shipped model, stepper windowed, hop 80 ms",
          "incremental": "shipped model at the node's defaults (incremental)"}


def _check(design: str) -> None:
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; expected one of {DESIGNS}")


def design_model(design: str) -> DualTalkModel:
    """The model a design streams, on the CPU, in eval mode."""
    from dualtalk_core.model import PRESETS, DualTalkModel

    _check(design)
    source = model_source()
    if source in PRESETS:
        return DualTalkModel.from_preset(source, fast_init=True, device="cpu",
                                         attention_span_frames=PRESET_SPAN_FRAMES).eval()
    return DualTalkModel.load(source, device="cpu").eval()


def design_stream(design: str) -> StreamConfig:
    """The node's StreamConfig; with the windowed overrides for `windowed`."""
    _check(design)
    if design == "windowed":
        return dataclasses.replace(NODE.stream, **WINDOWED)
    return dataclasses.replace(NODE.stream)


def node_params(design: str) -> list[str]:
    """The node's `-p` arguments: none at the defaults; the windowed overrides."""
    _check(design)
    source = model_source()
    params = [] if source == str(DEFAULT_MODEL_DIR) else ["-p", f"model:={source}"]
    if design == "windowed":
        params += [arg for k, v in WINDOWED.items() for arg in ("-p", f"stream.{k}:={v}")]
    return params


def model_name(design: str) -> str:
    """What a design's rows name as their model."""
    _check(design)
    return model_source()
