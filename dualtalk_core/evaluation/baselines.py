"""Reference methods for the evaluation table: DIM's baselines and a speaker-only ablation.

Each method has the model's `predict(self_audio (N,), partner_audio (N,), partner_motion (T, C))
-> (T', C)` call with T' = ceil(N / 640), so the evaluation loop treats them like the model.

- `RandomFrames`: every output frame is an independent random frame of the train split's motion
  (DIM's "Random"; DIM also adds small noise, which is left out: it only moves FD slightly).
- `NearestMotion`: segment nearest neighbour, see the class docstring.
- `MirrorPartner`: the partner's own motion (DIM's "Mirror"; no smoothing, so rPCC of ~|1 - c|).
- `SpeakerOnly`: the model with the partner's inputs removed (silent audio, neutral face), the
  "speaker-only" ablation of the DualTalk paper.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol

import numpy as np

from dualtalk_core.dataset.clips import list_clips, load_motion
from dualtalk_core.model.network_inputs import StatsPair
from dualtalk_core.units import num_frames
from dualtalk_core.rigs import get_rig

log = logging.getLogger(__name__)

MotionPair = tuple[np.ndarray, np.ndarray]  # (self (T, C), partner (T, C)) of one direction


class Predictor(Protocol):
    """What the evaluation calls: the model's `predict` signature. `waveform_stats` are the
    speakers' whole-file statistics, which the wav2vec2 model normalises with (the release's
    preprocessing); the baselines ignore them."""

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray: ...


def output_frames(self_audio: np.ndarray) -> int:
    """Frames the model produces for N samples: ceil(N / 640) (docs/DESIGN.md)."""
    return num_frames(len(self_audio))


def _check_motion(partner_motion: np.ndarray, dim: int | None = None) -> np.ndarray:
    motion = np.asarray(partner_motion, dtype=np.float32)
    if motion.ndim != 2 or len(motion) == 0 or (dim is not None and motion.shape[1] != dim):
        want = f"(T, {dim})" if dim is not None else "(T, C)"
        raise ValueError(f"expected partner_motion of shape {want} with T >= 1, "
                         f"got {motion.shape}")
    return motion


def _fit_length(motion: np.ndarray, frames: int) -> np.ndarray:
    """Truncate, or repeat the last frame, to exactly `frames` frames."""
    if len(motion) >= frames:
        return motion[:frames]
    return np.concatenate([motion, np.repeat(motion[-1:], frames - len(motion), axis=0)])


def load_train_motion(root: str | Path, split: str = "train", rig: str | None = None,
                      max_clips: int | None = None, seed: int = 0) -> list[MotionPair]:
    """(self, partner) motion of every clip of a split in both directions; no audio is read.

    `max_clips` keeps a seeded random subset of clips: the full DualTalk train split is ~1.7 GB
    of float32 motion, more than these baselines need.
    """
    names = list_clips(root, split)
    if not names:
        raise ValueError(f"no clips in {Path(root) / split}; the random and nearest-motion "
                         "baselines need a train split")
    if max_clips is not None and max_clips < len(names):
        keep = np.random.default_rng(seed).choice(len(names), size=max_clips, replace=False)
        names = [names[i] for i in sorted(keep)]
    pairs: list[MotionPair] = []
    for name in names:
        (m1, rig1), (m2, rig2) = (load_motion(Path(root) / split / f"{name}_speaker{s}.npz")
                                  for s in (1, 2))
        if rig is not None and {rig1, rig2} != {rig}:
            raise ValueError(f"train clip {name!r} uses rig {rig1!r}/{rig2!r}, expected {rig!r}")
        t = min(len(m1), len(m2))
        pairs += [(m1[:t], m2[:t]), (m2[:t], m1[:t])]
    return pairs


class RandomFrames:
    """Independent random train frames of the same rig (seeded: reruns give the same output)."""

    def __init__(self, pairs: list[MotionPair], seed: int = 0) -> None:
        if not pairs:
            raise ValueError("RandomFrames needs at least one train (self, partner) pair")
        # Every speaker is `self` in exactly one direction, so this holds each frame once.
        self.pool = np.concatenate([own for own, _ in pairs]).astype(np.float32)
        self.rng = np.random.default_rng(seed)

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        _check_motion(partner_motion, self.pool.shape[1])
        idx = self.rng.integers(len(self.pool), size=output_frames(self_audio))
        return self.pool[idx]  # (T, C)


class NearestMotion:
    """Segment nearest neighbour on the partner's motion (DIM's "Nearest Motion").

    The test clip is cut into non-overlapping `window_frames` segments (the last one padded by
    repeating its final frame). For each segment, the train segment (non-overlapping windows of
    every train clip, both directions) whose partner motion is nearest in Euclidean distance
    supplies its *own* motion for those frames. Partner motion is standardised per channel
    with train statistics first, so head rotation in radians weighs like blendshape weights,
    and averaged over `pool_frames` blocks to keep the search small. Segments rather than
    single frames, so the output is real, temporally coherent motion.
    """

    def __init__(self, pairs: list[MotionPair], window_frames: int = 25,
                 pool_frames: int = 5) -> None:
        if window_frames < 1 or pool_frames < 1 or window_frames % pool_frames:
            raise ValueError(f"expected window_frames a positive multiple of pool_frames, got "
                             f"{window_frames} and {pool_frames}")
        self.window, self.pool = window_frames, pool_frames
        frames = np.concatenate([own for own, _ in pairs]) if pairs else np.zeros((0, 0))
        if len(frames) == 0:
            raise ValueError("NearestMotion needs train (self, partner) pairs with frames")
        self.mean = frames.mean(axis=0)
        self.scale = np.maximum(frames.std(axis=0), 1e-6)  # constant channels: no division by 0
        own_windows, features = [], []
        for own, partner in pairs:
            n = len(own) // window_frames
            if n:
                own_windows.append(own[: n * window_frames].reshape(n, window_frames, -1))
                features.append(self._features(partner[: n * window_frames]))
        if not features:
            raise ValueError(f"no train clip has {window_frames} frames for NearestMotion")
        self.own = np.concatenate(own_windows).astype(np.float32)  # (M, W, C)
        self.keys = np.concatenate(features)  # (M, F)
        self.key_sq = np.einsum("mf,mf->m", self.keys, self.keys)
        log.info("NearestMotion: %d train segments of %d frames", len(self.keys), window_frames)

    def _features(self, motion: np.ndarray) -> np.ndarray:
        """(n W, C) motion -> (n, W / pool * C) standardised, block-averaged segment keys."""
        z = (motion - self.mean) / self.scale
        n, c = len(z) // self.window, z.shape[1]
        z = z.reshape(n, self.window // self.pool, self.pool, c).mean(axis=2)
        return z.reshape(n, -1).astype(np.float32)

    def _nearest(self, queries: np.ndarray, chunk: int = 256) -> np.ndarray:
        """Index of the nearest key for each query row, in chunks to bound memory."""
        out = np.empty(len(queries), dtype=np.int64)
        for i in range(0, len(queries), chunk):
            q = queries[i: i + chunk]
            d2 = self.key_sq[None, :] - 2.0 * q @ self.keys.T  # + |q|^2, same for every key
            out[i: i + chunk] = d2.argmin(axis=1)
        return out

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        motion = _check_motion(partner_motion, self.own.shape[2])
        frames = output_frames(self_audio)
        n = math.ceil(frames / self.window)
        padded = _fit_length(_fit_length(motion, frames), n * self.window)
        idx = self._nearest(self._features(padded))
        return self.own[idx].reshape(n * self.window, -1)[:frames]  # (T, C)


class MirrorPartner:
    """Output the partner's motion (DIM's "Mirror" baseline)."""

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        return _fit_length(_check_motion(partner_motion), output_frames(self_audio)).copy()


class SpeakerOnly:
    """The model with the partner removed: silent partner audio and a neutral partner face."""

    def __init__(self, model: Predictor, rig: str) -> None:
        self.model = model
        self.neutral = get_rig(rig).neutral_array()

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        motion = _check_motion(partner_motion, len(self.neutral))
        silent = np.zeros_like(np.asarray(partner_audio, dtype=np.float32))
        neutral = np.broadcast_to(self.neutral, motion.shape).copy()
        own = None if waveform_stats is None else waveform_stats[0]
        return self.model.predict(self_audio, silent, neutral, waveform_stats=(own, None))
