"""Training windows over a corpus split: fixed-length windows of every clip, both directions.

Batch design: a window is returned at its true length (the last window of a clip is usually
shorter) and `collate_windows` zero-pads to the longest window of the batch and returns a frame
mask. Padding per batch, not per window, because the networks here have no key-padding masks:
padded frames leak into valid ones through attention, so the less padding the better. Zero
padding is silence for audio and the neutral face for both rigs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from dualtalk_core.dataset.clips import Clip, list_clips, load_clip
from dualtalk_core.rigs import get_rig
from dualtalk_core.units import SAMPLES_PER_FRAME


@dataclass(frozen=True)
class Window:
    """Frames [start, end) of `clip` with speaker `target` (1 or 2) as the target."""

    clip: str
    target: int
    start: int
    end: int


def window_bounds(frames: int, window_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """[start, end) ranges, step window - overlap, covering all frames; the last may be short."""
    step = window_frames - overlap_frames
    bounds = []
    start = 0
    while True:
        end = min(start + window_frames, frames)
        bounds.append((start, end))
        if end >= frames:
            return bounds
        start += step


class ConversationDataset(Dataset):
    """Windows of every clip of a split, in both directions (each speaker is a target once).

    Item: dict of tensors, n = window length in frames (<= window_frames):
    `self_audio`, `partner_audio` (640 n,), `partner_motion`, `target` (n, C).
    """

    def __init__(self, root: str | Path, split: str, window_frames: int = 200,
                 overlap_frames: int = 0, rig: str | None = None, cache: bool = True,
                 max_mismatch_frames: int = 2, normalize_waveform: bool = False) -> None:
        """`normalize_waveform`: audio normalised per whole file before windows are cut (the
        wav2vec2 front end's training input, as released; see `clips.load_clip`)."""
        if window_frames < 1 or not 0 <= overlap_frames < window_frames:
            raise ValueError(f"expected window_frames >= 1 and 0 <= overlap_frames < "
                             f"window_frames, got {window_frames} and {overlap_frames}")
        if rig is not None:
            get_rig(rig)  # unknown rig names fail here, not at the first clip
        self.root, self.split = Path(root), split
        self.max_mismatch_frames = max_mismatch_frames
        self.normalize_waveform = normalize_waveform
        self.clip_names = list_clips(root, split)
        if not self.clip_names:
            raise ValueError(f"no clips in {self.root / split} (expected <clip>_speaker1.wav ...)")
        self._cache: dict[str, Clip] | None = {} if cache else None
        self.windows: list[Window] = []
        for name in self.clip_names:  # reads every clip once: lengths and rigs are checked here
            clip = load_clip(root, split, name, max_mismatch_frames, normalize_waveform)
            rig = rig or clip.rig
            if clip.rig != rig:
                raise ValueError(f"clip {name!r} uses rig {clip.rig!r}, expected {rig!r}; "
                                 "one dataset holds one rig")
            if self._cache is not None:
                self._cache[name] = clip
            for start, end in window_bounds(clip.frames, window_frames, overlap_frames):
                self.windows += [Window(name, t, start, end) for t in (1, 2)]
        self.rig: str = rig  # type: ignore[assignment]  # set by the loop: clip_names is not empty

    def clip(self, name: str) -> Clip:
        """A whole clip, from memory when caching."""
        if self._cache is not None and name in self._cache:
            return self._cache[name]
        return load_clip(self.root, self.split, name, self.max_mismatch_frames,
                         self.normalize_waveform)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        w = self.windows[index]
        clip = self.clip(w.clip)
        me, partner = w.target - 1, 2 - w.target  # speaker index of the target and the partner
        a0, a1 = w.start * SAMPLES_PER_FRAME, w.end * SAMPLES_PER_FRAME
        return {
            "self_audio": torch.from_numpy(clip.audio[me][a0:a1].copy()),
            "partner_audio": torch.from_numpy(clip.audio[partner][a0:a1].copy()),
            "partner_motion": torch.from_numpy(clip.motion[partner][w.start:w.end].copy()),
            "target": torch.from_numpy(clip.motion[me][w.start:w.end].copy()),
        }


def collate_windows(items: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Zero-pad windows to the longest in the batch; `mask` (B, T) is True on real frames."""
    lengths = torch.tensor([len(it["target"]) for it in items])
    n_frames = int(lengths.max())
    batch: dict[str, Any] = {}
    for key, per_frame in (("self_audio", SAMPLES_PER_FRAME), ("partner_audio", SAMPLES_PER_FRAME),
                           ("partner_motion", 1), ("target", 1)):
        first = items[0][key]
        out = first.new_zeros((len(items), n_frames * per_frame) + tuple(first.shape[1:]))
        for i, it in enumerate(items):
            out[i, : len(it[key])] = it[key]
        batch[key] = out  # (B, 640 T) audio, (B, T, C) motion
    batch["mask"] = torch.arange(n_frames)[None, :] < lengths[:, None]  # (B, T)
    batch["lengths"] = lengths
    return batch
