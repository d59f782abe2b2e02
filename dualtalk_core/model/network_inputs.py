"""What `DualTalkModel.forward` and `predict` accept: shapes, dtypes, frame counts, finiteness.

Kept apart from the network so that `network.py` reads as the model alone. Every check raises
ValueError or TypeError naming the input and what was expected.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dualtalk_core.model.audio_encoders import WAV2VEC2_MIN_SAMPLES
from dualtalk_core.model.waveform_norm import WaveformStats, release_num_frames, whole_clip_stats
from dualtalk_core.units import num_frames

if TYPE_CHECKING:
    from dualtalk_core.model.network import DualTalkModel

# (self, partner) statistics for `predict`; None for either = its whole-clip statistics.
StatsPair = tuple[WaveformStats | None, WaveformStats | None]


def check_inputs(model: DualTalkModel, self_audio: Any, partner_audio: Any,
                 partner_motion: Any, n_frames: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Checked inputs and the frame count T; ValueError/TypeError naming the input."""
    named = {"self_audio": self_audio, "partner_audio": partner_audio,
             "partner_motion": partner_motion}
    for name, value in named.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name}: expected a float torch.Tensor, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
    if self_audio.dim() != 2 or self_audio.shape != partner_audio.shape:
        raise ValueError(f"self_audio and partner_audio must both be (B, N), got "
                         f"{tuple(self_audio.shape)} and {tuple(partner_audio.shape)}")
    batch, n_samples = self_audio.shape
    min_samples = WAV2VEC2_MIN_SAMPLES if model.config.front_end == "wav2vec2" else 1
    if n_samples < min_samples:
        raise ValueError(f"audio has {n_samples} samples; the {model.config.front_end} "
                         f"front end needs at least {min_samples} (16 kHz)")
    if n_frames is None:
        n_frames = (release_num_frames(n_samples) if model.config.front_end == "wav2vec2"
                    else num_frames(n_samples))
    elif isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int or None, got {n_frames!r}")
    shape = tuple(partner_motion.shape)
    # A masked (causal) model aligns motion and audio frame by frame; an unmasked one
    # attends over the partner's whole motion, whatever its length (the release).
    free = model.plan["causal"] is None and all(m is None for m in
                                                model.plan["interaction_layers"])
    if len(shape) != 3 or shape[0] != batch or shape[2] != model.n_channels \
            or shape[1] < 1 or (not free and shape[1] != n_frames):
        frames = "T_m >= 1" if free else f"T = {n_frames}"
        raise ValueError(
            f"partner_motion: expected (B, T, C) with B = {batch}, {frames} (T = n_frames "
            f"or the frame count of {n_samples} samples), C = {model.n_channels} for rig "
            f"{model.config.rig}; got {shape}")
    for name, value in named.items():
        # A sum is finite iff all values are (barring overflow): one cheap reduction.
        if not torch.isfinite(value.sum()) and not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf values")
    dtype = model.joint_encoder.audio_projection.weight.dtype
    own, other, motion = (v.to(model.device, dtype) for v in named.values())
    return own, other, motion, n_frames


def check_log_mel(model: DualTalkModel, log_mel: Any, batch: int,
                  n_frames: int) -> torch.Tensor | None:
    if log_mel is None:
        return None
    if model.config.front_end != "logmel":
        raise ValueError("log_mel features need front_end='logmel' (the lite network)")
    expected = (2 * batch, n_frames, model.joint_encoder.log_mel.dim)
    if not isinstance(log_mel, torch.Tensor) or tuple(log_mel.shape) != expected:
        raise ValueError(f"log_mel: expected a tensor of shape (2B, T, dim) = {expected}, "
                         f"got {getattr(log_mel, 'shape', type(log_mel).__name__)}")
    return log_mel.to(model.device, torch.float32)


def as_float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype.kind != "f" or value.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D float array, got {value.ndim}-D "
                         f"{value.dtype}")
    return value


def normalise_voices(own: np.ndarray, other: np.ndarray,
                     stats: StatsPair | None) -> list[np.ndarray]:
    """Both voices as the wav2vec2 encoders were trained on them (`waveform_norm`)."""
    given = (None, None) if stats is None else stats
    if len(given) != 2 or not all(s is None or isinstance(s, WaveformStats) for s in given):
        raise TypeError("waveform_stats: expected (self, partner) WaveformStats or None")
    return [(s or whole_clip_stats(a)).apply(a) for a, s in zip((own, other), given)]
