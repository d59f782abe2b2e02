"""The DualTalk network: own audio + partner audio + partner motion -> own face motion.

Four modules, as in the paper (CVPR 2025) and the authors' release:
1. joint encoder: one audio encoder per speaker (wav2vec2 or log-mel), a shared projection to d,
   and an MLP for the partner's motion;
2. cross-modal temporal enhancer: partner audio attends to partner motion, then an LSTM;
3. interaction module: concat(own audio, enhanced partner) -> 2d, Transformer encoder, attention;
4. expressive synthesis: Transformer decoder, `h + 0.1 * Linear(h)` modulation, linear head.

Two presets: `official` is exactly the published network (non-causal, wav2vec2-large x2, flame56);
`lite` is the same four modules with a log-mel front end, small widths, a unidirectional LSTM and
attention masks that bound the total lookahead, so it runs in real time on a CPU (arkit52 rig).
Their config lives in `model_config`, loading and saving in `model_weights`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dualtalk_core.model import model_weights, network_inputs
from dualtalk_core.model.audio_encoders import LogMel, build_wav2vec2, wav2vec2_frames
from dualtalk_core.model.devices import resolve_device
from dualtalk_core.model.idle_motion import IdleMotionParams
# ARCH_FIELDS, LATER_FIELDS and RUNTIME_FIELDS are only re-exported: other packages import them
# from here until they switch to `from dualtalk_core.model import ...`.
from dualtalk_core.model.model_config import (ARCH_FIELDS, LATER_FIELDS, PRESETS,  # noqa: F401
                                              RUNTIME_FIELDS, ModelConfig, lookahead_plan,
                                              replace_fields)
from dualtalk_core.rigs import get_rig
from dualtalk_core.model.network_inputs import StatsPair
from dualtalk_core.units import FRAME_MS, SAMPLES_PER_FRAME


def _future_mask(n_frames: int, lookahead: int | None, device: torch.device,
                 span: int | None = None) -> Any:
    """(T, T) additive mask, -inf where key j > query i + lookahead or (with a `span`)
    j < i - span; None: no mask.

    Float rather than bool: PyTorch's attention converts bool masks on every call.
    """
    if lookahead is None:
        return None
    mask = torch.full((n_frames, n_frames), float("-inf"), device=device)
    if span is None:
        return mask.triu(lookahead + 1)
    return mask.triu(lookahead + 1) + mask.tril(-span - 1)


class LogMelEncoder(nn.Module):
    """Per-frame log-mel vectors -> audio features, with a short temporal convolution."""

    def __init__(self, config: ModelConfig, in_dim: int) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, config.audio_hidden_dim)
        self.conv = nn.Conv1d(config.audio_hidden_dim, config.audio_hidden_dim,
                              config.audio_conv_kernel_frames)

    def forward(self, mel: torch.Tensor, lookahead: int | None) -> torch.Tensor:
        # (B, T, in_dim) -> (B, T, audio_hidden_dim); the conv sees `lookahead` future frames.
        k = self.conv.kernel_size[0]
        right = k // 2 if lookahead is None else lookahead
        x = F.gelu(self.input(mel)).transpose(1, 2)
        x = F.gelu(self.conv(F.pad(x, (k - 1 - right, right))))
        return x.transpose(1, 2)


class JointEncoder(nn.Module):
    """Both speakers' audio and the partner's motion -> three (B, T, d) feature sequences."""

    def __init__(self, config: ModelConfig, n_channels: int, load_pretrained: bool) -> None:
        super().__init__()
        d = config.feature_dim
        if config.front_end == "wav2vec2":
            shape = dict(hidden_dim=config.audio_hidden_dim, n_layers=config.wav2vec2_layers,
                         n_heads=config.wav2vec2_heads, ff_dim=config.wav2vec2_ff_dim)
            path = config.wav2vec2_path if load_pretrained else None
            self.audio_encoder1 = build_wav2vec2(path=path, **shape)
            self.audio_encoder2 = build_wav2vec2(path=path, **shape)
        else:
            self.log_mel = LogMel(config.n_mels, config.stft_window_ms, config.stft_hop_ms)
            self.audio_encoder1 = LogMelEncoder(config, self.log_mel.dim)
            self.audio_encoder2 = LogMelEncoder(config, self.log_mel.dim)
        self.audio_projection = nn.Linear(config.audio_hidden_dim, d)  # shared by both speakers
        self.blendshape_encoder = nn.Sequential(
            nn.Linear(n_channels, d // 2), nn.ReLU(), nn.Linear(d // 2, d), nn.ReLU())

    def encode_audio(self, self_audio: torch.Tensor, partner_audio: torch.Tensor, n_frames: int,
                     conv_lookahead: int | None, log_mel: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        # 2 x (B, N) -> 2 x (B, T, audio_hidden_dim); log_mel: (2B, T, dim) given features
        if not hasattr(self, "log_mel"):
            return (wav2vec2_frames(self.audio_encoder1, self_audio, n_frames),
                    wav2vec2_frames(self.audio_encoder2, partner_audio, n_frames))
        if log_mel is None:  # one call for both speakers
            log_mel = self.log_mel_features(torch.cat([self_audio, partner_audio]), n_frames)
        mel_own, mel_other = log_mel.chunk(2)
        return (self.audio_encoder1(mel_own, conv_lookahead),
                self.audio_encoder2(mel_other, conv_lookahead))

    def log_mel_features(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        # (B, N) -> (B, T, hops * n_mels)
        with torch.autocast(audio.device.type, enabled=False):  # FFT and logs in float32
            return self.log_mel(audio, n_frames)

    def forward(self, self_audio: torch.Tensor, partner_audio: torch.Tensor,
                partner_motion: torch.Tensor, n_frames: int, conv_lookahead: int | None,
                log_mel: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # (B, N), (B, N), (B, T_m, C) -> (B, T, d), (B, T, d), (B, T_m, d)
        own, other = self.encode_audio(self_audio, partner_audio, n_frames, conv_lookahead,
                                       log_mel)
        return (self.audio_projection(own), self.audio_projection(other),
                self.blendshape_encoder(partner_motion))


class TemporalEnhancer(nn.Module):
    """Partner audio attends to partner motion (aligns the two), then an LSTM over time."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.feature_dim
        self.audio_residual = config.partner_audio_residual
        self.cross_attention = nn.MultiheadAttention(d, config.n_heads, batch_first=True)
        hidden = d // 2 if config.lstm_bidirectional else d  # output width d either way
        self.temporal_lstm = nn.LSTM(d, hidden, config.lstm_layers, batch_first=True,
                                     bidirectional=config.lstm_bidirectional)

    def forward(self, audio: torch.Tensor, motion: torch.Tensor, mask: Any) -> torch.Tensor:
        # (B, T, d) query, (B, T, d) key/value -> (B, T, d)
        x, _ = self.cross_attention(audio, motion, motion, attn_mask=mask, need_weights=False)
        if self.audio_residual:
            x = x + audio
        x, _ = self.temporal_lstm(x)
        return x


class InteractionModule(nn.Module):
    """Transformer encoder + self-attention over [own audio, enhanced partner] features."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = 2 * config.feature_dim
        layer = nn.TransformerEncoderLayer(width, config.n_heads, config.ff_dim, config.dropout,
                                           batch_first=True)
        self.interaction_encoder = nn.TransformerEncoder(layer, config.n_interaction_layers,
                                                         enable_nested_tensor=False)
        self.self_attention = nn.MultiheadAttention(width, config.n_heads, batch_first=True)
        self.dropout = nn.Dropout(config.interaction_dropout)

    def forward(self, x: torch.Tensor, layer_masks: list[Any], mask: Any) -> torch.Tensor:
        # (B, T, 2d) -> (B, T, 2d); layers run one by one because each has its own lookahead
        for layer, layer_mask in zip(self.interaction_encoder.layers, layer_masks):
            x = _encoder_layer(layer, x, layer_mask)
        x, _ = self.self_attention(x, x, x, attn_mask=mask, need_weights=False)
        return self.dropout(x)


def _encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, mask: Any) -> torch.Tensor:
    """`layer(x, src_mask=mask)` (post-norm) as its training path computes it, also at inference.

    Why: at inference PyTorch's fused encoder-layer kernel runs a float mask through a masked
    softmax: ~1.9 ms per lite layer on a 200-frame CPU window against ~1.0 ms for these same
    modules, whose attention takes the scaled-dot-product kernel (profiled; same outputs to
    float rounding, and exactly the computation the layer does in training).
    """
    h, _ = layer.self_attn(x, x, x, attn_mask=mask, need_weights=False)  # (B, T, 2d)
    x = layer.norm1(x + layer.dropout1(h))
    h = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
    return layer.norm2(x + layer.dropout2(h))


class SynthesisModule(nn.Module):
    """Transformer decoder (target = memory = features), modulation, linear head to the rig."""

    def __init__(self, config: ModelConfig, n_channels: int) -> None:
        super().__init__()
        width = 2 * config.feature_dim
        layer = nn.TransformerDecoderLayer(width, config.n_heads, config.ff_dim, config.dropout,
                                           batch_first=True)
        self.synthesis_decoder = nn.TransformerDecoder(layer, config.n_decoder_layers)
        self.blendshape_predictor = nn.Linear(width, n_channels)
        self.modulation_layer = nn.Linear(width, width)
        self.modulation_scale = config.modulation_scale

    def forward(self, x: torch.Tensor, mask: Any) -> torch.Tensor:
        # (B, T, 2d) -> (B, T, C); no activation in the modulation, as in the release
        # *_is_causal=False: the masks are applied as given, without PyTorch comparing them
        # against a freshly built causal mask on every call.
        h = self.synthesis_decoder(x, x, tgt_mask=mask, memory_mask=mask, tgt_is_causal=False,
                                   memory_is_causal=False)
        h = h + self.modulation_scale * self.modulation_layer(h)
        return self.blendshape_predictor(h)


class DualTalkModel(nn.Module):
    """Own audio (B, N) + partner audio (B, N) + partner motion (B, T, C) -> own motion."""

    def __init__(self, config: ModelConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"expected a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.n_channels = get_rig(config.rig).dim
        self.plan = lookahead_plan(config)
        self.joint_encoder = JointEncoder(config, self.n_channels, load_pretrained)
        self.temporal_enhancer = TemporalEnhancer(config)
        self.interaction_module = InteractionModule(config)
        self.synthesis_module = SynthesisModule(config, self.n_channels)
        # Sampled blinks and head sway for streams (`idle_motion`); `load` reads them from the
        # checkpoint folder, `dualtalk-fit-idle` writes them there. `save` does not: they are
        # fitted to one network's output, and a retrained network needs its own.
        self.idle_motion: IdleMotionParams | None = None

    # ---------------------------------------------------------------- construction and files
    @classmethod
    def from_preset(cls, name: str, *, fast_init: bool = False,
                    **overrides: Any) -> DualTalkModel:
        """A new model of preset `name` ('official' or 'lite'), fields replaced by `overrides`.

        `fast_init`: every parameter small uniform noise instead of the random initialisation,
        built on the meta device: for timing only (the official preset's init takes ~20 s).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        config = replace_fields(PRESETS[name], overrides)
        if fast_init:
            return model_weights.build_uniform(cls, config)
        return cls(config).to(resolve_device(config.device))

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> DualTalkModel:
        """Load a folder written by `save` (or its .safetensors file), or the published .pth.

        A saved config's architecture fields are authoritative; `overrides` may change only
        RUNTIME_FIELDS. The saved `device` describes the training machine, so it is replaced by
        'auto' unless given. A bare .pth carries no config: it is `official` + overrides.
        """
        return model_weights.load_model(cls, path, overrides)

    def save(self, directory: str | Path) -> Path:
        """Write `model.safetensors` + `config.json` into `directory`; returns the folder."""
        return model_weights.save_model(self, directory)

    # ---------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def lookahead_ms(self) -> float | None:
        """How far past a frame's start time its output may depend on audio (None: unbounded).

        Frame k's own features reach the end of the frame (+1 frame); the longest masked path
        adds `lookahead_frames`, so frame k depends on samples before 640 (k + 1 + F) only.
        """
        if self.config.lookahead_frames is None:
            return None
        frames = self.plan["audio_conv"] + sum(self.plan["interaction_layers"])
        return (frames + 1) * FRAME_MS

    # ---------------------------------------------------------------- inference
    def forward(self, self_audio: torch.Tensor, partner_audio: torch.Tensor,
                partner_motion: torch.Tensor, n_frames: int | None = None,
                log_mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N), (B, N), (B, T_m, C) -> (B, T, C), T = n_frames or the frame count rule.

        Frame count: `ceil(N / 640)` for the log-mel front end; for wav2vec2 the release's
        `ceil(N / 16000 * 25)` in floating point (`waveform_norm.release_num_frames`), to which
        its features are resampled. A masked (causal) model needs T_m = T; an unmasked one,
        like the published network, attends over the partner's whole motion, any T_m >= 1.
        wav2vec2 expects normalised audio (`predict` normalises; `waveform_norm`).
        `log_mel` (2B, T, dim): the log-mel features of [self; partner] audio, when the caller
        already has them (see `log_mel_frames`); None computes them from the audio.
        """
        self_audio, partner_audio, partner_motion, n = network_inputs.check_inputs(
            self, self_audio, partner_audio, partner_motion, n_frames)
        dev = partner_motion.device
        log_mel = network_inputs.check_log_mel(self, log_mel, self_audio.shape[0], n)
        span = self.config.attention_span_frames
        layer_masks = [_future_mask(n, r, dev, span) for r in self.plan["interaction_layers"]]
        causal = _future_mask(n, self.plan["causal"], dev, span)
        own, other, motion = self.joint_encoder(self_audio, partner_audio, partner_motion, n,
                                                self.plan["audio_conv"], log_mel)
        enhanced = self.temporal_enhancer(other, motion, causal)  # (B, T, d)
        x = self.interaction_module(torch.cat([own, enhanced], dim=-1), layer_masks, causal)
        return self.synthesis_module(x, causal)  # (B, T, 2d) -> (B, T, C)

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray, log_mel: np.ndarray | None = None,
                waveform_stats: StatsPair | None = None,
                n_frames: int | None = None, clip: bool = True) -> np.ndarray:
        """(N,), (N,), (T_m, C) float arrays -> (T, C) float32 within the rig's ranges (unless
        `clip` is false: the streaming engine clips, and counts, after smoothing), eval mode, no
        gradients.

        The wav2vec2 front end gets each voice normalised as the release does: with its own
        whole-clip statistics, or with `waveform_stats` (self, partner; None for either = its
        whole-clip statistics), e.g. a whole file's when the arrays are cut from it, or a
        stream's running ones. The log-mel front end takes raw audio and ignores them.
        `log_mel` (2, T, dim): precomputed features of [self, partner] (`log_mel_frames`).
        `n_frames`: T; default the frame count rule of `forward`.
        """
        arrays = [network_inputs.as_float_array(name, value, ndim) for name, value, ndim in (
            ("self_audio", self_audio, 1), ("partner_audio", partner_audio, 1),
            ("partner_motion", partner_motion, 2))]
        if self.config.front_end == "wav2vec2":
            arrays[:2] = network_inputs.normalise_voices(arrays[0], arrays[1], waveform_stats)
        tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays]
        was_training = self.training
        if was_training:  # walking every module costs ~0.3 ms: a tenth of a hop's budget
            self.eval()
        try:
            with torch.inference_mode(), self._autocast():
                mel = None if log_mel is None else torch.from_numpy(
                    np.ascontiguousarray(log_mel, dtype=np.float32)).to(self.device)
                out = self(*(a.unsqueeze(0).to(self.device) for a in tensors),
                           n_frames=n_frames, log_mel=mel)
        finally:
            if was_training:
                self.train()
        # The rig's documented ranges, as the streaming engine publishes them (training reads
        # the unclipped forward()).
        pred = out[0].float().cpu().numpy()
        return np.clip(pred, *get_rig(self.config.rig).range_arrays()) if clip else pred

    @property
    def log_mel_context_frames(self) -> int | None:
        """Frames before frame k whose samples its log-mel features read (None: no log-mel)."""
        if self.config.front_end != "logmel":
            return None
        mel = self.joint_encoder.log_mel
        return math.ceil((mel.window_len - mel.hop_len) / SAMPLES_PER_FRAME)

    def log_mel_frames(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """(B, N) float audio -> (B, n_frames, dim) float32 log-mel features (lite front end).

        Frame k's features read samples from `log_mel_context_frames` frames before it up to
        its end (zeros before the audio's start), nothing else: a caller that runs overlapping
        windows, like the streaming engine, computes each frame once and passes them back to
        `predict(log_mel=...)`.
        """
        if self.config.front_end != "logmel":
            raise ValueError("log_mel_frames needs front_end='logmel' (the lite network)")
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            return self.joint_encoder.log_mel_features(x, n_frames).cpu().numpy()

    def _autocast(self) -> torch.autocast:
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
        enabled = self.device.type == "cuda" and self.config.cuda_autocast in dtypes
        return torch.autocast(self.device.type, dtype=dtypes.get(self.config.cuda_autocast),
                              enabled=enabled)
