"""Each synthetic person's resting face: the blendshape values and head angles they hold when
they do nothing.

Real capture data never rests at zero. ARKit face tracking reports every person's neutral face
with their own squint, lid height, brow and lip tension and a slight asymmetry, and each session
sees the head from its own angle. These offsets differ far more between people than a
conversation moves them, which is why a random frame of someone else's face is a poor guess for
this person's, and why the paper's per-clip FD separates methods on real data.

A person is a voice identity (`voices.py`: language + variant), so one identity keeps one
resting face in every clip of a corpus (train and test share identities, as in the DualTalk
dataset; `ood` identities are new). Each clip adds a small per-session shift (camera and
posture).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from dualtalk_core.rigs import get_rig

_RIG = get_rig("arkit52")
_IDX = {n: i for i, n in enumerate(_RIG.names)}
_SIDES = ("Left", "Right")


@dataclass(frozen=True)
class PersonaConfig:
    """Uniform (low, high) ranges of resting values per person; head angles in radians (std)."""

    paired: tuple[tuple[str, float], ...] = (   # both sides, with a little asymmetry
        ("eyeBlink", 0.2), ("eyeSquint", 0.3), ("eyeLookDown", 0.2), ("browDown", 0.2),
        ("mouthFrown", 0.15), ("mouthPress", 0.15), ("cheekSquint", 0.1), ("mouthSmile", 0.12),
        ("mouthDimple", 0.1), ("noseSneer", 0.08), ("mouthStretch", 0.06))
    single: tuple[tuple[str, float], ...] = (
        ("browInnerUp", 0.15), ("mouthClose", 0.1), ("mouthRollLower", 0.15),
        ("mouthRollUpper", 0.1), ("mouthShrugLower", 0.2), ("mouthShrugUpper", 0.1),
        ("jawOpen", 0.05), ("jawForward", 0.05), ("cheekPuff", 0.04))
    asymmetry: float = 0.02        # std of the left/right difference of paired channels
    one_sided: tuple[tuple[str, float], ...] = (  # a lopsided mouth, jaw and gaze
        ("mouth", 0.08), ("jaw", 0.04), ("eyeLookIn", 0.1))
    head_std_rad: tuple[float, float, float] = (0.08, 0.1, 0.05)  # pitch, yaw, roll
    session_std: float = 0.015     # per-clip shift of every resting blendshape
    session_head_std_rad: float = 0.02


def resting_face(identity: str, seed: int, cfg: PersonaConfig = PersonaConfig()) -> np.ndarray:
    """(55,) arkit52 resting values of one identity in the corpus of `seed` (same every clip)."""
    rng = np.random.default_rng([seed, zlib.crc32(identity.encode("utf-8"))])
    face = np.zeros(len(_IDX), np.float64)
    for name, high in cfg.paired:
        base = rng.uniform(0.0, high)
        for side in _SIDES:
            face[_IDX[name + side]] = base + rng.normal(0.0, cfg.asymmetry)
    for name, high in cfg.single:
        face[_IDX[name]] = rng.uniform(0.0, high)
    side = _SIDES[int(rng.integers(2))]
    other = _SIDES[1 - _SIDES.index(side)]
    for name, high in cfg.one_sided:
        face[_IDX[name + side]] = rng.uniform(0.0, high)
    face[_IDX["eyeLookOut" + other]] = face[_IDX["eyeLookIn" + side]]  # both eyes turn one way
    for name, std in zip(("headPitch", "headYaw", "headRoll"), cfg.head_std_rad):
        face[_IDX[name]] = rng.normal(0.0, std)
    return face


def session_face(identity: str, seed: int, rng: np.random.Generator,
                 cfg: PersonaConfig = PersonaConfig()) -> np.ndarray:
    """(55,) this clip's resting values: the identity's plus a small per-session shift."""
    shift = rng.normal(0.0, cfg.session_std, len(_IDX))
    shift[-3:] = rng.normal(0.0, cfg.session_head_std_rad, 3)
    face = resting_face(identity, seed, cfg) + shift
    face[:-3] = np.clip(face[:-3], 0.0, 1.0)
    return face
