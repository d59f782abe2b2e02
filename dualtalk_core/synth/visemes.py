"""Phonemes -> ARKit jaw and mouth curves with coarticulation.

Each phoneme gets a mouth-shape target (a few ARKit channels) and a dominance: how strongly it
pulls the mouth towards its target. Curves are the dominance-weighted mean of the targets, with
dominance decaying exponentially outside each segment (Cohen-Massaro style), so a bilabial
closes the lips even inside a vowel run while weak consonants (h, t, k) take the shape of their
vowel neighbours. Evaluated at 200 Hz and averaged over each 40 ms frame, so short closures
survive as partial closures instead of aliasing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth.espeak import PAUSE
from dualtalk_core.units import FRAME_RATE_HZ

_SUB = 8  # sub-samples per frame (200 Hz)
_NAMES = get_rig("arkit52").names
_IDX = {n: i for i, n in enumerate(_NAMES)}
_IGNORED = set("ːˑˈˌ̪̩̃ʰʲ")


@dataclass(frozen=True)
class VisemeConfig:
    """Coarticulation and style parameters (one speaker's articulation)."""

    gain: float = 1.0                 # articulation amplitude (hypo- vs hyper-articulation)
    lead_s: float = 0.03              # lips move slightly before the sound (anticipation)
    tau_before_s: float = 0.04        # anticipatory coarticulation reaches further back...
    tau_after_s: float = 0.03         # ...than carry-over coarticulation


# Mouth targets per phoneme class: (dominance, {channel: value}); Left/Right pairs filled below.
_CLASSES: dict[str, tuple[float, dict[str, float]]] = {
    "open": (1.0, {"jawOpen": 0.55, "mouthLowerDown": 0.30, "mouthUpperUp": 0.10}),
    "open_round": (1.0, {"jawOpen": 0.48, "mouthFunnel": 0.20, "mouthLowerDown": 0.2}),
    "mid": (0.9, {"jawOpen": 0.32, "mouthLowerDown": 0.15, "mouthStretch": 0.12}),
    "schwa": (0.7, {"jawOpen": 0.24, "mouthLowerDown": 0.08}),
    "front": (1.0, {"jawOpen": 0.13, "mouthStretch": 0.35, "mouthSmile": 0.15}),
    "round": (1.1, {"jawOpen": 0.33, "mouthFunnel": 0.50, "mouthPucker": 0.30}),
    "close_round": (1.2, {"jawOpen": 0.14, "mouthFunnel": 0.35, "mouthPucker": 0.60}),
    "bilabial": (2.5, {"jawOpen": 0.02, "mouthClose": 0.25, "mouthPress": 0.45,
                       "mouthRollLower": 0.15, "mouthRollUpper": 0.10}),
    "labiodental": (2.0, {"jawOpen": 0.06, "mouthRollLower": 0.45, "mouthUpperUp": 0.25,
                          "mouthPress": 0.10}),
    "dental": (1.2, {"jawOpen": 0.12, "tongueOut": 0.20, "mouthStretch": 0.10}),
    "alveolar": (0.6, {"jawOpen": 0.08, "mouthStretch": 0.22, "mouthSmile": 0.05}),
    "sibilant": (1.0, {"jawOpen": 0.05, "mouthStretch": 0.30, "mouthSmile": 0.08}),
    "postalveolar": (1.6, {"jawOpen": 0.08, "mouthFunnel": 0.50, "mouthPucker": 0.35,
                           "mouthUpperUp": 0.20}),
    "velar": (0.5, {"jawOpen": 0.16}),
    "w": (1.6, {"jawOpen": 0.06, "mouthPucker": 0.70, "mouthFunnel": 0.35}),
    "r": (1.0, {"jawOpen": 0.10, "mouthFunnel": 0.30, "mouthPucker": 0.25}),
    "j": (0.8, {"jawOpen": 0.06, "mouthStretch": 0.30}),
    "h": (0.2, {"jawOpen": 0.20}),
    "pause": (1.5, {}),
}
_SYMBOLS: dict[str, str] = {}
for _cls, _chars in (
    ("open", "aɑæɐä"), ("open_round", "ɒ"), ("mid", "eɛɜʌɞ"), ("schwa", "əɚɘɵ"),
    ("front", "iɪyʏ"), ("round", "oɔø"), ("close_round", "uʊʉɯ"), ("bilabial", "pbmɱ"),
    ("labiodental", "fv"), ("dental", "θð"), ("alveolar", "tdnlɾɫɬ"), ("sibilant", "sz"),
    ("postalveolar", "ʃʒ"), ("velar", "kgɡŋxʔ"), ("w", "wʍ"), ("r", "ɹrɻ"), ("j", "jç"),
    ("h", "hɦ"),
):
    for _ch in _chars:
        _SYMBOLS[_ch] = _cls
_VOWELS = {"open", "open_round", "mid", "schwa", "front", "round", "close_round"}


def _target_vector(values: dict[str, float]) -> np.ndarray:
    vec = np.zeros(len(_NAMES), np.float32)
    for name, value in values.items():
        if name in _IDX:
            vec[_IDX[name]] = value
        else:  # a symmetric pair such as mouthSmile -> mouthSmileLeft/Right
            vec[_IDX[name + "Left"]] = value
            vec[_IDX[name + "Right"]] = value
    return vec


_TARGETS = {c: (d, _target_vector(v)) for c, (d, v) in _CLASSES.items()}


def phoneme_classes(phoneme: str) -> list[str]:
    """IPA phoneme -> its articulation classes in order (a diphthong gives two, `tʃ` one).

    Diacritics and length marks are dropped; an affricate keeps its fricative (the visible
    part); unknown symbols are skipped (espeak voices share one IPA inventory).
    """
    if phoneme == PAUSE:
        return ["pause"]
    classes = [_SYMBOLS[ch] for ch in phoneme if ch not in _IGNORED and ch in _SYMBOLS]
    if len(classes) == 2 and classes[0] in ("alveolar", "velar") and classes[1] not in _VOWELS:
        classes = classes[1:]  # affricates tʃ, dʒ
    return classes or ["schwa"]


def _segments(phonemes: tuple[str, ...] | list[str], starts_s: np.ndarray,
              end_s: float) -> list[tuple[float, float, str]]:
    """(start, end, class) segments; multi-class phonemes split their duration evenly."""
    ends = np.append(np.asarray(starts_s, np.float64)[1:], end_s)
    segs: list[tuple[float, float, str]] = []
    for ph, t0, t1 in zip(phonemes, starts_s, ends):
        classes = phoneme_classes(ph)
        edges = np.linspace(t0, max(t1, t0), len(classes) + 1)
        segs.extend((float(a), float(b), c) for a, b, c in zip(edges[:-1], edges[1:], classes))
    return segs


def viseme_curves(phonemes: tuple[str, ...] | list[str], starts_s: np.ndarray, end_s: float,
                  n_frames: int, config: VisemeConfig = VisemeConfig()) -> np.ndarray:
    """Phoneme track (clip time, s) -> (n_frames, 55) arkit52 mouth/jaw values (others 0).

    Outside the track (before the first and after `end_s`) the mouth rests at 0.
    """
    if len(phonemes) != len(starts_s):
        raise ValueError(f"expected one start per phoneme, got {len(phonemes)} and "
                         f"{len(starts_s)}")
    grid = (np.arange(n_frames * _SUB) + 0.5) / (FRAME_RATE_HZ * _SUB)
    num = np.zeros((len(grid), len(_NAMES)), np.float64)
    den = np.full(len(grid), 1e-3)  # the rest pose always has a little pull
    for t0, t1, cls in _segments(phonemes, starts_s, end_s):
        t0, t1 = t0 - config.lead_s, t1 - config.lead_s
        dom, target = _TARGETS[cls]
        lo = np.searchsorted(grid, t0 - 6 * config.tau_before_s)
        hi = np.searchsorted(grid, t1 + 6 * config.tau_after_s)
        t = grid[lo:hi]
        dist = np.where(t < t0, (t0 - t) / config.tau_before_s,
                        np.where(t > t1, (t - t1) / config.tau_after_s, 0.0))
        weight = dom * np.exp(-dist)
        num[lo:hi] += weight[:, None] * target
        den[lo:hi] += weight
    curves = (num / den[:, None]) * config.gain
    frames = curves.reshape(n_frames, _SUB, len(_NAMES)).mean(axis=1)
    return np.clip(frames, 0.0, 1.0).astype(np.float32)  # (n_frames, 55)
