"""Test helper: a tiny ARKit-layout corpus on disk, for trainer and sweep tests."""
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE

NAMES = np.array(ARKIT_BLENDSHAPES + HEAD_POSE)


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
