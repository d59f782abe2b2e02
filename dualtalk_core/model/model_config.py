"""What defines a DualTalk network: its config dataclass, the two presets, the lookahead plan.

`ModelConfig` is the one config of the model; a checkpoint carries it, and loading compares
its architecture fields (`ARCH_FIELDS`) with the saved ones while run-time fields
(`RUNTIME_FIELDS`) may differ. `lookahead_plan` turns the lite network's lookahead budget into
per-layer limits; the network and its `lookahead_ms` both read it, so the two cannot disagree.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from dualtalk_core.config_files import checked_scalar
from dualtalk_core.rigs import get_rig
from dualtalk_core.units import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME


@dataclass
class ModelConfig:
    """Everything that defines a DualTalk network; the defaults are the `lite` preset."""

    rig: str = "arkit52"  # output channels: dualtalk_core.rigs
    front_end: str = "logmel"  # "wav2vec2" (official) or "logmel" (lite)
    feature_dim: int = 48  # d: audio and motion features; the interaction width is 2d
    audio_hidden_dim: int = 96  # width of each audio encoder (wav2vec2: 1024)
    n_heads: int = 4
    ff_dim: int = 192  # feed-forward width of the interaction/synthesis transformers
    n_interaction_layers: int = 3
    n_decoder_layers: int = 1
    lstm_layers: int = 2
    lstm_bidirectional: bool = False
    modulation_scale: float = 0.1  # h = dec + scale * Linear(dec)
    lookahead_frames: int | None = 4  # frames of future context past the frame; None: unbounded
    # Not in the release (None = unbounded): frames of past context every attention may see.
    # A bound lets a stream keep fixed-size caches and still equal whole-clip inference
    # (streaming/incremental_stepper.py); training windows shorter than it never reach it.
    attention_span_frames: int | None = None
    # Not in the release (False): also add the partner's audio features to the temporal
    # enhancer's attention output. As published, partner audio is only the query of attention
    # over partner motion, so with a constant partner face (no tracker) it has no effect.
    partner_audio_residual: bool = False
    # log-mel front end (lite)
    n_mels: int = 64
    stft_window_ms: float = 25.0
    stft_hop_ms: float = 10.0
    audio_conv_kernel_frames: int = 5
    # wav2vec2 front end (official)
    wav2vec2_layers: int = 24
    wav2vec2_heads: int = 16
    wav2vec2_ff_dim: int = 4096
    wav2vec2_path: str | None = None  # local Hugging Face folder with pretrained weights
    # training and run time (not architecture: may differ between saving and loading)
    dropout: float = 0.1
    interaction_dropout: float = 0.5
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    # "off" (float32, as the release runs and every preset defaults to) or an opt-in "bf16" /
    # "fp16" autocast on CUDA (deviation from float32: bench/official_numerics.py).
    cuda_autocast: str = "off"

    def __post_init__(self) -> None:
        get_rig(self.rig)  # raises ValueError naming the known rigs
        choices = {"front_end": ("wav2vec2", "logmel"), "device": ("auto", "cpu", "cuda"),
                   "cuda_autocast": ("bf16", "fp16", "off")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)!r}; "
                                 f"expected one of {allowed}")
        self._check_numbers()
        if self.feature_dim % self.n_heads or self.feature_dim % 2:
            raise ValueError(f"feature_dim={self.feature_dim} must be even and divisible by "
                             f"n_heads={self.n_heads}")
        if self.n_interaction_layers < 1 or self.n_decoder_layers < 1 or self.lstm_layers < 1:
            raise ValueError("n_interaction_layers, n_decoder_layers and lstm_layers must be >= 1")
        self._check_log_mel()
        self._check_lookahead()

    def _check_numbers(self) -> None:
        """Sizes >= 1 and finite rates: a 0 or -3 from a config file must fail here, naming
        the field, not as a ZeroDivisionError or a torch error deep inside the network."""
        sizes = ("feature_dim", "audio_hidden_dim", "n_heads", "ff_dim", "n_mels",
                 "wav2vec2_layers", "wav2vec2_heads", "wav2vec2_ff_dim")
        for name in sizes:
            if not getattr(self, name) >= 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "interaction_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), "
                                 f"got {getattr(self, name)}")
        for name in ("modulation_scale", "stft_window_ms", "stft_hop_ms"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"ModelConfig.{name} must be finite, got {getattr(self, name)}")

    def _check_log_mel(self) -> None:
        """The lite front end's STFT must tile the 40 ms motion frame exactly."""
        hop = self.stft_hop_ms * SAMPLE_RATE_HZ / 1000
        if self.front_end == "logmel" and (hop < 1 or hop != round(hop)
                                           or SAMPLES_PER_FRAME % round(hop)
                                           or self.stft_window_ms < self.stft_hop_ms
                                           or self.audio_conv_kernel_frames < 1):
            raise ValueError(f"stft_hop_ms={self.stft_hop_ms} must split the 40 ms frame into "
                             f"whole hops, stft_window_ms={self.stft_window_ms} must not be "
                             "shorter, and audio_conv_kernel_frames must be >= 1")

    def _check_lookahead(self) -> None:
        """A bounded lookahead is only possible where every layer can be masked."""
        if self.attention_span_frames is not None and (
                self.attention_span_frames < 1 or self.lookahead_frames is None):
            raise ValueError(f"attention_span_frames={self.attention_span_frames}: a span needs "
                             "a bounded lookahead_frames (masked attention) and >= 1 frame")
        if self.lookahead_frames is None:
            return
        if self.lookahead_frames < 0:
            raise ValueError(f"lookahead_frames must be >= 0 or None, "
                             f"got {self.lookahead_frames}")
        if self.front_end != "logmel" or self.lstm_bidirectional:
            raise ValueError("a bounded lookahead_frames needs front_end='logmel' and "
                             "lstm_bidirectional=False (wav2vec2 and a BiLSTM see the "
                             "whole clip); use lookahead_frames=None")


# Fields that may differ between a checkpoint's config and the model that loads it.
RUNTIME_FIELDS = ("wav2vec2_path", "dropout", "interaction_dropout", "device", "cuda_autocast")
ARCH_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                    if f.name not in RUNTIME_FIELDS)
# Architecture fields added after checkpoints were shipped, with the value their absence from
# a saved config means (what those checkpoints were trained with).
LATER_FIELDS: dict[str, Any] = {"partner_audio_residual": False, "attention_span_frames": None}

PRESETS: dict[str, ModelConfig] = {
    "lite": ModelConfig(),
    "official": ModelConfig(
        rig="flame56", front_end="wav2vec2", feature_dim=256, audio_hidden_dim=1024,
        ff_dim=2048, lstm_bidirectional=True, lookahead_frames=None),
}


def replace_fields(config: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """`config` with `overrides` applied; ValueError naming unknown fields (a typo must fail)."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise ValueError(f"unknown ModelConfig field(s) {unknown}")
    hints = typing.get_type_hints(ModelConfig)
    checked = {k: checked_scalar(v, hints[k], f"ModelConfig.{k}") for k, v in overrides.items()}
    return dataclasses.replace(config, **checked)


def lookahead_plan(config: ModelConfig) -> dict[str, Any]:
    """Frames of future context each layer may see (None everywhere: the official network).

    Lookahead adds up along a path through stacked layers, so the budget is split so that the
    longest path (audio -> conv -> interaction layers) sums to exactly `lookahead_frames`; the
    cross-attention, LSTM, self-attention and decoder are strictly causal (0).
    """
    n = config.n_interaction_layers
    if config.lookahead_frames is None:
        return {"audio_conv": None, "interaction_layers": [None] * n, "causal": None}
    total = config.lookahead_frames
    conv = min(total // 2, config.audio_conv_kernel_frames - 1)
    rest = total - conv
    layers = [rest // n + (1 if i < rest % n else 0) for i in range(n)]
    return {"audio_conv": conv, "interaction_layers": layers, "causal": 0}
