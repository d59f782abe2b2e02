"""Conversation corpus reader: `DATA/<split>/<clip>_speaker{1,2}.{wav,npz}` -> training windows.

Layout (docs/DESIGN.md): the folder is the split, the partner of a file swaps `speaker1` <->
`speaker2`, and every file is a target once, so each clip gives two directions. Motion npz files
come in the published FLAME layout (`exp`, `pose`) or the ARKit layout (`coeffs`, `names`).

Batch design: a window is returned at its true length (the last window of a clip is usually
shorter) and `collate_windows` zero-pads to the longest window of the batch and returns a frame
mask. Padding per batch, not per window, because the networks here have no key-padding masks:
padded frames leak into valid ones through attention, so the less padding the better. Zero
padding is silence for audio and the neutral face for both rigs.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly
from torch.utils.data import Dataset

from dualtalk_core.rigs import get_rig, to_rig_order

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
_FILE = re.compile(r"^(?P<clip>.+)_speaker(?P<spk>[12])\.(?P<ext>wav|npz)$")


@dataclass(frozen=True)
class Clip:
    """Both speakers of one conversation, trimmed to a common length of T frames.

    `audio[i]` is speaker i+1's mono float32 16 kHz audio of exactly 640*T samples (the last
    frame zero-padded to full length), so frame k is samples [640 k, 640 (k+1)).
    `motion[i]` is speaker i+1's (T, C) float32 motion in the order of rig `rig`.
    """

    name: str
    rig: str
    audio: tuple[np.ndarray, np.ndarray]
    motion: tuple[np.ndarray, np.ndarray]

    @property
    def frames(self) -> int:
        return int(self.motion[0].shape[0])


@dataclass(frozen=True)
class Window:
    """Frames [start, end) of `clip` with speaker `target` (1 or 2) as the target."""

    clip: str
    target: int
    start: int
    end: int


def _split_dir(root: str | Path, split: str) -> Path:
    path = Path(root) / split
    if not path.is_dir():
        raise ValueError(f"split folder not found: {path} (expected DATA/{{train,test,ood}}/; "
                         "dualtalk-synth also writes val/, which config/train_lite.yaml "
                         "validates on: rerun it, the other splits stay byte-identical)")
    return path


def list_clips(root: str | Path, split: str) -> list[str]:
    """Sorted clip names of a split; raises ValueError if any clip lacks one of its 4 files."""
    folder = _split_dir(root, split)
    clips = {m["clip"] for p in folder.iterdir() if (m := _FILE.match(p.name))}
    missing = [
        f"{c}_speaker{s}.{ext}" for c in sorted(clips) for s in (1, 2) for ext in ("wav", "npz")
        if not (folder / f"{c}_speaker{s}.{ext}").is_file()
    ]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{folder}: {len(missing)} file(s) missing: {shown}; every clip needs "
            "<clip>_speaker1.{wav,npz} and <clip>_speaker2.{wav,npz} (add them or remove the clip)"
        )
    return sorted(clips)


def load_wav(path: str | Path) -> np.ndarray:
    """Any-rate PCM/float WAV -> (N,) mono float32 at 16 kHz, full scale +-1."""
    rate, data = wavfile.read(str(path))
    if data.dtype == np.uint8:
        audio = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        audio = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    else:
        audio = data.astype(np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)  # stereo (or more) -> mono
    if rate != SAMPLE_RATE:
        g = math.gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g)
    return np.ascontiguousarray(audio, dtype=np.float32)


def load_motion(path: str | Path) -> tuple[np.ndarray, str]:
    """A motion npz of either layout -> ((T, C) float32 in rig order, rig name)."""
    with np.load(str(path), allow_pickle=False) as npz:
        if "exp" in npz and "pose" in npz:
            exp, pose = npz["exp"], npz["pose"]
            if exp.ndim != 2 or exp.shape[1] < 50 or pose.ndim != 2 or pose.shape[1] != 6:
                raise ValueError(f"{path}: expected exp (T,50) and pose (T,6), "
                                 f"got {exp.shape} and {pose.shape}")
            # Published order: expression, jaw rotation (pose 3:6), head rotation (pose 0:3).
            motion = np.concatenate([exp[:, :50], pose[:, 3:6], pose[:, 0:3]], axis=1)
            return motion.astype(np.float32), "flame56"
        if "coeffs" in npz and "names" in npz:
            rig = str(npz["rig"]) if "rig" in npz else "arkit52"
            if "fps" in npz and float(npz["fps"]) != FPS:
                raise ValueError(f"{path}: motion at {float(npz['fps'])} fps, expected {FPS}")
            names = [str(n) for n in npz["names"]]
            motion, cmap = to_rig_order(rig, names, npz["coeffs"])
            if cmap.missing or cmap.unknown:
                logger.warning("%s: channels missing (neutral used): %s; unknown (ignored): %s",
                               path, list(cmap.missing), list(cmap.unknown))
            return motion, rig
        raise ValueError(f"{path}: expected keys exp+pose (FLAME) or coeffs+names (ARKit), "
                         f"got {sorted(npz.files)}")


def load_clip(root: str | Path, split: str, clip: str, max_mismatch_frames: int = 2) -> Clip:
    """Read both speakers of `clip` and trim them to one length (see `Clip`).

    Audio lengths (ceil(N/640) frames) and motion lengths may disagree by up to
    `max_mismatch_frames` (tracker and encoder rounding); more than that means misaligned files.
    """
    folder = _split_dir(root, split)
    paths = {(s, ext): folder / f"{clip}_speaker{s}.{ext}"
             for s in (1, 2) for ext in ("wav", "npz")}
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise ValueError(f"clip {clip!r}: missing {absent}; both speakers need a .wav and a .npz")
    audio = [load_wav(paths[(s, "wav")]) for s in (1, 2)]
    loaded = [load_motion(paths[(s, "npz")]) for s in (1, 2)]
    rigs = {rig for _, rig in loaded}
    if len(rigs) != 1:
        raise ValueError(f"clip {clip!r}: speakers use different rigs {sorted(rigs)}")
    frames = [math.ceil(len(a) / SAMPLES_PER_FRAME) for a in audio] + [len(m) for m, _ in loaded]
    if max(frames) - min(frames) > max_mismatch_frames:
        raise ValueError(
            f"clip {clip!r}: lengths disagree by more than {max_mismatch_frames} frames: audio "
            f"{frames[0]}/{frames[1]} frames (ceil(N/640)), motion {frames[2]}/{frames[3]} frames"
        )
    n_frames = min(frames)
    if max(frames) != n_frames:
        logger.info("clip %r: trimmed to %d frames (had %s)", clip, n_frames, frames)
    n_samples = n_frames * SAMPLES_PER_FRAME
    audio = [np.pad(a[:n_samples], (0, max(0, n_samples - len(a)))) for a in audio]
    motion = [np.ascontiguousarray(m[:n_frames]) for m, _ in loaded]
    return Clip(clip, rigs.pop(), (audio[0], audio[1]), (motion[0], motion[1]))


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
                 max_mismatch_frames: int = 2) -> None:
        if window_frames < 1 or not 0 <= overlap_frames < window_frames:
            raise ValueError(f"expected window_frames >= 1 and 0 <= overlap_frames < "
                             f"window_frames, got {window_frames} and {overlap_frames}")
        if rig is not None:
            get_rig(rig)  # unknown rig names fail here, not at the first clip
        self.root, self.split = Path(root), split
        self.max_mismatch_frames = max_mismatch_frames
        self.clip_names = list_clips(root, split)
        if not self.clip_names:
            raise ValueError(f"no clips in {self.root / split} (expected <clip>_speaker1.wav ...)")
        self._cache: dict[str, Clip] | None = {} if cache else None
        self.windows: list[Window] = []
        for name in self.clip_names:  # reads every clip once: lengths and rigs are checked here
            clip = load_clip(root, split, name, max_mismatch_frames)
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
        return load_clip(self.root, self.split, name, self.max_mismatch_frames)

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
