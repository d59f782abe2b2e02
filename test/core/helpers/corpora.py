"""Test helper: tiny ARKit-layout corpora on disk, for dataset, trainer and sweep tests."""
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE

NAMES = np.array(ARKIT_BLENDSHAPES + HEAD_POSE)
ARKIT = list(NAMES)


def write_corpus(root: Path, clips: dict[str, list[tuple[str, int]]]) -> Path:
    """ARKit-layout clips per split: {split: [(clip, frames)]}; jawOpen follows the audio level."""
    for split, items in clips.items():
        (root / split).mkdir(parents=True)
        for c, (clip, frames) in enumerate(items):
            rng = np.random.default_rng(c)
            for spk in (1, 2):
                level = np.clip(np.sin(np.arange(frames) / (4 + spk + c)), 0, None)
                audio = rng.normal(size=(frames, 640)) * level[:, None] * 0.3
                wavfile.write(root / split / f"{clip}_speaker{spk}.wav", 16000,
                              (audio.ravel() * 32767).astype(np.int16))
                coeffs = rng.normal(0.0, 0.05, size=(frames, 55)) + 0.2
                coeffs[:, 17] = level  # jawOpen
                np.savez(root / split / f"{clip}_speaker{spk}.npz",
                         coeffs=coeffs.astype(np.float32), names=NAMES)
    return root


def write_arkit_clip(folder: Path, clip: str, frames: int, seed: int = 0,
                     audio_frames: int | None = None) -> None:
    """Both speakers of an ARKit-layout clip; motion values encode (speaker, frame, channel)."""
    folder.mkdir(parents=True, exist_ok=True)
    for spk in (1, 2):
        n = (audio_frames or frames) * 640
        wavfile.write(folder / f"{clip}_speaker{spk}.wav", 16000,
                      np.random.default_rng(seed + spk).integers(-9000, 9000, n).astype(np.int16))
        coeffs = spk * 1000 + np.arange(frames)[:, None] + np.arange(55)[None, :] / 100
        np.savez(folder / f"{clip}_speaker{spk}.npz", coeffs=coeffs.astype(np.float32),
                 names=np.array(ARKIT), rig="arkit52", fps=25)
