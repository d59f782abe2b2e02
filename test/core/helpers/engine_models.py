"""A small random-weight lite model and a raw stream config, shared by the engine's tests."""
from __future__ import annotations

import torch

from dualtalk_core.model import DualTalkModel
from dualtalk_core.streaming import StreamConfig
from dualtalk_core.streaming.smoothing import OneEuroConfig

SMALL = dict(feature_dim=16, audio_hidden_dim=32, ff_dim=32, n_mels=16, device="cpu")
RAW = OneEuroConfig(enabled=False)


def tiny_model() -> DualTalkModel:
    """The lite preset at a quarter of its width (seeded): the engine's logic at little cost."""
    torch.manual_seed(1)
    return DualTalkModel.from_preset("lite", **SMALL).eval()


def raw_config(**kw) -> StreamConfig:
    """Raw network output: no smoothing, no cross-fade, no idle motion (unless asked)."""
    return StreamConfig(**{"smoothing": RAW, "crossfade_ms": 0.0, "idle_motion": False, **kw})
