"""Log-mel front end of the lite network: 16 kHz audio -> one feature vector per 25 fps frame.

Each STFT window *ends* at the end of its hop, and a frame stacks the hops that end inside it, so
frame k's features depend on samples `[640 k - (window - hop), 640 (k + 1))` only: never on audio
after the frame's end, and never on statistics of the whole clip. Features are scaled with fixed
constants, so a frame computed in a streaming window equals the same frame computed offline.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.audio_utils import mel_filter_bank

SAMPLE_RATE_HZ = 16_000
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
_LOG_FLOOR = 1e-8  # power floor: -80 dB below full scale, keeps silence finite


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
        fbank = mel_filter_bank(
            num_frequency_bins=self.window_len // 2 + 1, num_mel_filters=n_mels,
            min_frequency=20.0, max_frequency=SAMPLE_RATE_HZ / 2, sampling_rate=SAMPLE_RATE_HZ,
            norm="slaney", mel_scale="slaney",
        )
        # Not persistent: derived from the config, so checkpoints hold learned weights only.
        self.register_buffer("mel_basis", torch.from_numpy(fbank).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(self.window_len), persistent=False)

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
        power = torch.view_as_real(spec).square().sum(-1)  # (B, n_freq, T * hops)
        mel = power.transpose(1, 2) @ self.mel_basis  # (B, T * hops, n_mels)
        # Fixed affine scaling (not clip statistics): silence -> -1, loud speech -> about +2.
        logmel = (torch.log10(mel.clamp(min=_LOG_FLOOR)) + 4.0) / 4.0
        return logmel.reshape(batch, n_frames, self.dim)
