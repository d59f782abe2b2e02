"""Training-time augmentation: the same words through other microphones and rooms, and
windows without the partner.

A model trained on a few voices recorded one way learns their timbre along with their speech,
and on a new voice (a breathy one, one through a band-limited channel) its jaw goes wrong even
though the phonemes are the same. Robots hear through whatever microphone they carry, in
whatever room they stand in. So each training window's two tracks get, independently and at
random: a level change, a spectral tilt (bright or muffled microphone), a short room reverb and
background noise. Motion targets are untouched: none of these change what was said when.

A robot does not always have its partner (`drop_partner`): the face tracker loses the person,
the partner's microphone is off. The node then feeds silence and a neutral face, an input the
published recipe never trains on, so what the network does with it is an accident of its
weights. Measured with the stage-1 default model (`config/train_lite.yaml`, no dropout) on the
synthetic test split (160 directions): zeroing the partner lowered its mean head pitch from
0.029 to 0.015 rad. That split's people hold 0.009 rad on average against train's 0.021, so the
accident made the partner-less head level the better one (pitch level error 0.0057 against
0.0062), and the speaker-only ablation "won" the head. Training a share of windows with exactly
that input makes "no partner" a case the network has learned: its best guess from the target's
own voice.

A robot often hears its partner without seeing them (`hide_partner_face`): the voice stays,
the face becomes still and neutral, so listening must be learned from the voice.

Randomness comes from the generator the caller passes, so a seeded trainer stays reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.signal import fftconvolve, lfilter

from dualtalk_core.units import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME


@dataclass(frozen=True)
class AudioAugmentConfig:
    """Probabilities and uniform (low, high) ranges of each transform."""

    gain_db: tuple[float, float] = (-6.0, 6.0)
    tilt_prob: float = 0.7
    tilt: tuple[float, float] = (-0.6, 0.9)  # y[n] = x[n] - a x[n-1]: a > 0 bright, a < 0 dull
    reverb_prob: float = 0.4
    rt60_s: tuple[float, float] = (0.1, 0.5)
    reverb_wet: tuple[float, float] = (0.1, 0.5)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (15.0, 40.0)

    def __post_init__(self) -> None:
        probs = (self.tilt_prob, self.reverb_prob, self.noise_prob)
        if not all(0.0 <= p <= 1.0 for p in probs) or self.rt60_s[0] <= 0:
            raise ValueError(f"AudioAugmentConfig: probabilities in [0, 1] and rt60 > 0, got "
                             f"{probs} and {self.rt60_s}")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _room_response(rng: np.random.Generator, rt60_s: float, wet: float) -> np.ndarray:
    """Direct path plus an exponentially decaying noise tail (-60 dB at rt60_s)."""
    n = int(rt60_s * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    tail *= wet / max(np.linalg.norm(tail), 1e-9)
    tail[0] = 1.0
    return tail


def augment_track(audio: np.ndarray, rng: np.random.Generator,
                  cfg: AudioAugmentConfig = AudioAugmentConfig()) -> np.ndarray:
    """(N,) float audio at 16 kHz -> (N,) float32 augmented copy, clipped to +-1."""
    x = np.asarray(audio, dtype=np.float64)
    level = _rms(x)
    if rng.random() < cfg.tilt_prob:
        x = lfilter([1.0, -rng.uniform(*cfg.tilt)], [1.0], x)
    if rng.random() < cfg.reverb_prob:
        ir = _room_response(rng, rng.uniform(*cfg.rt60_s), rng.uniform(*cfg.reverb_wet))
        x = fftconvolve(x, ir)[: len(x)]
    if level > 0.0:
        x *= level / max(_rms(x), 1e-12)  # the filters change loudness; the gain below sets it
    x *= 10.0 ** (rng.uniform(*cfg.gain_db) / 20.0)
    if rng.random() < cfg.noise_prob:
        speech = max(_rms(x), 1e-3)  # a near-silent track still gets a noise floor
        x += rng.standard_normal(len(x)) * speech * 10.0 ** (-rng.uniform(*cfg.snr_db) / 20.0)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def drop_partner(partner_audio: torch.Tensor, partner_motion: torch.Tensor, prob: float,
                 rng: np.random.Generator, neutral: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability `prob` per window, replace the partner by silence and a still neutral
    face (what `baselines.SpeakerOnly` and a node without a partner face feed); returns new
    tensors. partner_audio (B, N), partner_motion (B, T, C), neutral (C,) the rig's neutral face.
    Padding frames of a dropped window become neutral too; the loss masks them either way.
    """
    chosen = _chosen_windows(len(partner_audio), prob, rng, "drop_partner")
    audio, motion = partner_audio.clone(), partner_motion.clone()
    audio[chosen] = 0.0
    motion[chosen] = torch.as_tensor(neutral, dtype=motion.dtype)
    return audio, motion


def hide_partner_face(partner_motion: torch.Tensor, prob: float, rng: np.random.Generator,
                      neutral: np.ndarray) -> torch.Tensor:
    """With probability `prob` per window, replace the partner's face by a still neutral one
    while their voice stays (what a robot with a microphone and no face tracker feeds); returns
    a new tensor. Listening reactions in the corpus follow the partner's speech, which both their
    voice and their moving jaw reveal; a network that always sees the jaw has no reason to learn
    them from the voice. partner_motion (B, T, C), neutral (C,)."""
    motion = partner_motion.clone()
    motion[_chosen_windows(len(motion), prob, rng, "hide_partner_face")] = torch.as_tensor(
        neutral, dtype=motion.dtype)
    return motion


def _chosen_windows(n: int, prob: float, rng: np.random.Generator, name: str) -> torch.Tensor:
    """(n,) bool: which windows of a batch a per-window coin of probability `prob` picks (one
    draw per window, in order, so a seeded trainer repeats)."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{name}: prob must be in [0, 1], got {prob}")
    return torch.from_numpy(rng.random(n) < prob)


def augment_batch(batch: dict[str, Any], rng: np.random.Generator) -> None:
    """Augment the real samples (not the padding) of both audio tracks of every window of a
    collated batch, in place."""
    for i, frames in enumerate(batch["lengths"].tolist()):
        n = frames * SAMPLES_PER_FRAME
        for key in ("self_audio", "partner_audio"):
            track = batch[key][i, :n].numpy()
            batch[key][i, :n] = torch.from_numpy(augment_track(track, rng))
