"""Audio front ends: 16 kHz audio -> one feature vector per 25 fps frame.

`wav2vec2` (the official network): transformers' Wav2Vec2Model, its CNN features resampled to
the frame rate before the projection and transformer, as in the authors' release.

`LogMel` (the lite network): each STFT window *ends* at the end of its hop, and a frame stacks
the hops that end inside it, so frame k's features depend on samples
`[640 k - (window - hop), 640 (k + 1))` only: never on audio after the frame's end, and never on
statistics of the whole clip. Features are scaled with fixed constants, so a frame computed in a
streaming window equals the same frame computed offline.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dualtalk_core.units import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME

_LOG_FLOOR = 1e-8  # power floor: -80 dB below full scale, keeps silence finite
WAV2VEC2_MIN_SAMPLES = 400  # receptive field of wav2vec2's CNN: shorter audio has no features


class LogMel(nn.Module):
    """(B, N) audio -> (B, T, hops_per_frame * n_mels) log-mel features, T motion frames."""

    def __init__(self, n_mels: int, window_ms: float, hop_ms: float) -> None:
        super().__init__()
        self.window_len = round(window_ms * SAMPLE_RATE_HZ / 1000)
        self.hop_len = round(hop_ms * SAMPLE_RATE_HZ / 1000)
        if self.hop_len < 1 or SAMPLES_PER_FRAME % self.hop_len:
            raise ValueError(f"hop of {hop_ms} ms must divide the 40 ms frame into whole samples")
        if self.window_len < self.hop_len:
            raise ValueError(f"STFT window ({window_ms} ms) must not be shorter than the hop")
        self.n_mels = n_mels
        self.hops_per_frame = SAMPLES_PER_FRAME // self.hop_len
        from transformers.audio_utils import mel_filter_bank  # importing transformers takes ~1 s

        fbank = mel_filter_bank(
            num_frequency_bins=self.window_len // 2 + 1, num_mel_filters=n_mels,
            min_frequency=20.0, max_frequency=SAMPLE_RATE_HZ / 2, sampling_rate=SAMPLE_RATE_HZ,
            norm="slaney", mel_scale="slaney",
        )
        # Not persistent: derived from the config, so checkpoints hold learned weights only.
        # Made on the CPU even under a meta default device: no checkpoint fills them, so a
        # model built on the meta device (`from_preset(fast_init=True)`) keeps real values.
        self.register_buffer("mel_basis", torch.from_numpy(fbank).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(self.window_len, device="cpu"),
                             persistent=False)

    @property
    def dim(self) -> int:
        return self.hops_per_frame * self.n_mels

    def forward(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        # (B, N) -> (B, T, hops_per_frame * n_mels); audio past T frames is dropped, short audio
        # is zero-padded. Left padding makes the first window end at the first hop's end.
        batch = audio.shape[0]
        audio = audio.float()[:, : n_frames * SAMPLES_PER_FRAME]
        right = n_frames * SAMPLES_PER_FRAME - audio.shape[1]
        audio = F.pad(audio, (self.window_len - self.hop_len, right))
        spec = torch.stft(audio, n_fft=self.window_len, hop_length=self.hop_len,
                          window=self.window, center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, n_freq, T * hops)
        mel = power.transpose(1, 2) @ self.mel_basis  # (B, T * hops, n_mels)
        # Fixed affine scaling (not clip statistics): silence -> -1, loud speech -> about +2.
        logmel = (torch.log10(mel.clamp(min=_LOG_FLOOR)) + 4.0) / 4.0
        return logmel.reshape(batch, n_frames, self.dim)


def build_wav2vec2(hidden_dim: int, n_layers: int, n_heads: int, ff_dim: int,
                   path: str | None = None) -> nn.Module:
    """wav2vec2-large-lv60-self layout (layer-norm CNN with bias, stable layer norm).

    Random weights, or pretrained ones from `path`, a local Hugging Face folder (never the hub:
    nothing is downloaded). The CNN is frozen, as in the release.
    """
    from transformers import Wav2Vec2Config, Wav2Vec2Model  # slow import: only when needed

    if path is None:
        model = Wav2Vec2Model(Wav2Vec2Config(
            hidden_size=hidden_dim, num_hidden_layers=n_layers, num_attention_heads=n_heads,
            intermediate_size=ff_dim, feat_extract_norm="layer", conv_bias=True,
            do_stable_layer_norm=True, feat_proj_dropout=0.1, layerdrop=0.1,
            mask_time_prob=0.05, vocab_size=32))
    else:
        folder = Path(path).expanduser()
        weights = [folder / n for n in ("model.safetensors", "pytorch_model.bin")]
        if not (folder / "config.json").is_file() or not any(w.is_file() for w in weights):
            raise FileNotFoundError(
                f"wav2vec2_path={str(folder)!r}: expected a local Hugging Face folder of "
                "facebook/wav2vec2-large-960h-lv60-self containing config.json and "
                "model.safetensors (or pytorch_model.bin); wav2vec2_path=None: random weights")
        model = Wav2Vec2Model.from_pretrained(str(folder), local_files_only=True)
        got = (model.config.hidden_size, model.config.num_hidden_layers)
        if got != (hidden_dim, n_layers):
            raise ValueError(f"{folder}: wav2vec2 has (hidden, layers)={got}, the model config "
                             f"expects {(hidden_dim, n_layers)}")
    model.freeze_feature_encoder()
    return model


def wav2vec2_frames(w2v: nn.Module, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
    """(B, N) audio -> (B, T, hidden) wav2vec2 features at the 25 fps frame rate."""
    x = w2v.feature_extractor(audio)  # (B, N) -> (B, 512, ~N / 320), 50 Hz
    # Linear resampling to T frames *before* the projection and transformer, as in the release.
    x = F.interpolate(x, size=n_frames, mode="linear", align_corners=True)
    x, _ = w2v.feature_projection(x.transpose(1, 2))  # (B, T, 512) -> (B, T, hidden)
    if w2v.training and x.shape[1] > w2v.config.mask_time_length:
        x = w2v._mask_hidden_states(x)  # SpecAugment, as Wav2Vec2Model.forward does
    return w2v.encoder(x).last_hidden_state
