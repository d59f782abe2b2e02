"""Test helper: a tiny ARKit-layout corpus with smooth motion, stand-in models and a hand-made
scoring result, for the evaluation tests (scoring, verdict, tables, the CLI)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile

from dualtalk_core.model.network_inputs import StatsPair
from dualtalk_core.rigs import get_rig

RIG = get_rig("arkit52")
FRAMES = {"train": (70, 80, 60), "test": (64, 50)}


def motion(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Smooth, rig-plausible motion: blendshapes in [0, 1], head angles of a few degrees."""
    t = np.arange(frames)[:, None] / 25.0
    freq, phase = rng.uniform(0.2, 2.0, RIG.dim), rng.uniform(0, 2 * np.pi, RIG.dim)
    m = 0.5 + 0.4 * np.sin(2 * np.pi * freq * t + phase)
    m[:, -3:] = 0.1 * np.sin(2 * np.pi * freq[-3:] * t + phase[-3:])
    return m.astype(np.float32)


def _write_speaker(folder: Path, clip: str, speaker: int, coeffs: np.ndarray,
                   rng: np.random.Generator) -> None:
    samples = len(coeffs) * 640 - 100  # a partial last frame, as real recordings have
    audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * np.arange(samples) / 16000)
    wavfile.write(folder / f"{clip}_speaker{speaker}.wav", 16000, (audio * 32767).astype(np.int16))
    np.savez(folder / f"{clip}_speaker{speaker}.npz", coeffs=coeffs,
             names=np.array(RIG.names), rig="arkit52", fps=25)


def write_scoring_corpus(root: Path) -> Path:
    """The clips of `FRAMES` per split, both speakers, seeded: the same files on every call."""
    rng = np.random.default_rng(0)
    for split, lengths in FRAMES.items():
        (root / split).mkdir()
        for i, frames in enumerate(lengths):
            for speaker in (1, 2):
                _write_speaker(root / split, f"clip{i:02d}", speaker, motion(rng, frames), rng)
    return root


class MirrorModel:
    """A stand-in model (no torch): answers with the partner's motion."""

    class config:  # noqa: N801 - mimics `model.config.rig`
        rig = "arkit52"

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        return np.asarray(partner_motion, dtype=np.float32).copy()


class ZeroModel(MirrorModel):
    """A collapsed model: the neutral face whatever the input."""

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        return np.zeros_like(partner_motion, dtype=np.float32)


def constant_row(value: float) -> dict[str, dict[str, float]]:
    """Every FD, P-FD, MSE and rPCC of every group set to `value`."""
    return {g: {m: value for m in ("FD", "P-FD", "MSE", "rPCC")} for g in ("EXP", "JAW", "POSE")}


def verdict_results() -> dict[str, Any]:
    """A scoring result made by hand: over 3 directions the model has values 1, 1, 5 (mean
    2.33), the speaker-only ablation 2, 2, 0.5 (mean 1.5) and the mirror 9 everywhere; the
    model's JAW rPCC of the first direction is undefined."""
    model_values, ablation_values = [1.0, 1.0, 5.0], [2.0, 2.0, 0.5]
    per_clip = []
    for i, (ours, theirs) in enumerate(zip(model_values, ablation_values)):
        direction = {"clip": f"c{i}", "target": 1}
        per_clip += [{**direction, "method": "dualtalk", **constant_row(ours)},
                     {**direction, "method": "speaker_only", **constant_row(theirs)},
                     {**direction, "method": "mirror", **constant_row(9.0)}]
    per_clip[0]["JAW"]["rPCC"] = None  # an undefined value is left out of the count
    return {"methods": {"dualtalk": {"groups": constant_row(7 / 3)},
                        "speaker_only": {"groups": constant_row(1.5)},
                        "mirror": {"groups": constant_row(9.0)}},
            "per_clip": per_clip}
