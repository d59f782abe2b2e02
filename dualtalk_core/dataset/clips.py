"""Conversation corpus files: `DATA/<split>/<clip>_speaker{1,2}.{wav,npz}` -> whole clips.

Layout (docs/DESIGN.md): the folder is the split, the partner of a file swaps `speaker1` <->
`speaker2`, and every file is a target once, so each clip gives two directions. Motion npz files
come in the published FLAME layout (`exp`, `pose`) or the ARKit layout (`coeffs`, `names`).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualtalk_core.audio.wav_files import read_wav
from dualtalk_core.model.waveform_norm import WaveformStats, whole_clip_stats
from dualtalk_core.rigs import to_rig_order
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLES_PER_FRAME, num_frames

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^(?P<clip>.+)_speaker(?P<spk>[12])\.(?P<ext>wav|npz)$")


@dataclass(frozen=True)
class Clip:
    """Both speakers of one conversation, trimmed to a common length of T frames.

    `audio[i]` is speaker i+1's mono float32 16 kHz audio of exactly 640*T samples (the last
    frame zero-padded to full length), so frame k is samples [640 k, 640 (k+1)).
    `motion[i]` is speaker i+1's (T, C) float32 motion in the order of rig `rig`.
    `waveform_stats[i]` are the statistics of speaker i+1's whole WAV file, before trimming:
    what the published network normalises its input with (`model.waveform_norm`).
    """

    name: str
    rig: str
    audio: tuple[np.ndarray, np.ndarray]
    motion: tuple[np.ndarray, np.ndarray]
    waveform_stats: tuple[WaveformStats, WaveformStats]

    @property
    def frames(self) -> int:
        return int(self.motion[0].shape[0])


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
            if "fps" in npz and float(npz["fps"]) != FRAME_RATE_HZ:
                raise ValueError(f"{path}: motion at {float(npz['fps'])} fps, expected "
                                 f"{FRAME_RATE_HZ}")
            names = [str(n) for n in npz["names"]]
            motion, cmap = to_rig_order(rig, names, npz["coeffs"])
            if cmap.missing or cmap.unknown:
                logger.warning("%s: channels missing (neutral used): %s; unknown (ignored): %s",
                               path, list(cmap.missing), list(cmap.unknown))
            return motion, rig
        raise ValueError(f"{path}: expected keys exp+pose (FLAME) or coeffs+names (ARKit), "
                         f"got {sorted(npz.files)}")


def load_clip(root: str | Path, split: str, clip: str, max_mismatch_frames: int = 2,
              normalize: bool = False) -> Clip:
    """Read both speakers of `clip` and trim them to one length (see `Clip`).

    Audio lengths (ceil(N/640) frames) and motion lengths may disagree by up to
    `max_mismatch_frames` (tracker and encoder rounding); more than that means misaligned files.
    `normalize`: each WAV normalised with its whole file's statistics before trimming, the
    published wav2vec2 network's training input (`model.waveform_norm`).
    """
    folder = _split_dir(root, split)
    paths = {(s, ext): folder / f"{clip}_speaker{s}.{ext}"
             for s in (1, 2) for ext in ("wav", "npz")}
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise ValueError(f"clip {clip!r}: missing {absent}; both speakers need a .wav and a .npz")
    audio = [read_wav(paths[(s, "wav")]) for s in (1, 2)]
    loaded = [load_motion(paths[(s, "npz")]) for s in (1, 2)]
    rigs = {rig for _, rig in loaded}
    if len(rigs) != 1:
        raise ValueError(f"clip {clip!r}: speakers use different rigs {sorted(rigs)}")
    frames = [num_frames(len(a)) for a in audio] + [len(m) for m, _ in loaded]
    if max(frames) - min(frames) > max_mismatch_frames:
        raise ValueError(
            f"clip {clip!r}: lengths disagree by more than {max_mismatch_frames} frames: audio "
            f"{frames[0]}/{frames[1]} frames (ceil(N/640)), motion {frames[2]}/{frames[3]} frames"
        )
    n_frames = min(frames)
    if max(frames) != n_frames:
        logger.info("clip %r: trimmed to %d frames (had %s)", clip, n_frames, frames)
    stats = [whole_clip_stats(a) for a in audio]
    if normalize:  # the whole file, before trimming, as the release does
        audio = [s.apply(a) for s, a in zip(stats, audio)]
    n_samples = n_frames * SAMPLES_PER_FRAME
    audio = [np.pad(a[:n_samples], (0, max(0, n_samples - len(a)))) for a in audio]
    motion = [np.ascontiguousarray(m[:n_frames]) for m, _ in loaded]
    return Clip(clip, rigs.pop(), (audio[0], audio[1]), (motion[0], motion[1]),
                (stats[0], stats[1]))
