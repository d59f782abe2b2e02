"""Which espeak-ng voices each split may use.

Speaker identity is the voice+variant combination (`en-gb-scotland+f2`); pitch, range and speed
are drawn per clip on top. OOD clips use only combinations that train/test never use: every
combination with a held-out accent or a held-out variant.

The `val` split is for picking checkpoints without looking at test or ood. Each of its clips
pairs one person from the train pool with one whose variant no other split uses, so it asks both
questions the held-out splits ask (a known person, a new voice) without sharing a voice with
`ood`. It is last in SPLITS so that adding it left every other split's clips unchanged.

The neural Piper voice (`piper_voice.py`) joins when `VoiceConfig.piper_share` > 0: that share
of clips has one person (never both: one model is one person) speak with it, drawn after the
espeak pair, so a share of 0 draws exactly what it always did. Train, test and val hear joe as
trained (in val it replaces the known person); `ood` hears only the held-out shifted joe. The
replaced person keeps their face (`PiperSpeaker.person`): the voice is spread over the split's
people instead of being one more person of its own.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Union

import numpy as np

from dualtalk_core.synth.espeak import Voice
from dualtalk_core.synth.piper_voice import OOD_SHIFT, PiperSpeaker

Speaker = Union[Voice, PiperSpeaker]

# espeak-ng voice identifiers: `en` is British English (`en-gb` is not an identifier).
IN_LANGUAGES: tuple[str, ...] = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp",
                                 "en-gb-x-gbclan", "en-us-nyc")
OOD_LANGUAGES: tuple[str, ...] = ("en-029", "en-gb-x-gbcwmd")
IN_VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4")
OOD_VARIANTS: tuple[str, ...] = ("m7", "m8", "f5")
VAL_VARIANTS: tuple[str, ...] = ("paul", "rob", "linda", "steph")  # named espeak-ng variants
# The index of a split seeds its clips (corpus.py): append, never reorder.
SPLITS: tuple[str, ...] = ("train", "test", "ood", "val")


PIPER_IN = PiperSpeaker()                          # train, test and val
PIPER_OOD = PiperSpeaker(shift=float(OOD_SHIFT))   # ood only


@dataclass(frozen=True)
class VoiceConfig:
    """Which engines speak: `piper_share` of clips (0-1) have one Piper person."""

    piper_share: float = 0.0
    piper_length_scale: tuple[float, float] = (0.9, 1.15)  # per clip; espeak: 140-185 wpm

    def __post_init__(self) -> None:
        if not 0.0 <= self.piper_share <= 1.0:
            raise ValueError(f"expected 0 <= piper_share <= 1, got {self.piper_share}")
        low, high = self.piper_length_scale
        if not 0.0 < low <= high:
            raise ValueError(f"expected 0 < low <= high length scales, got {(low, high)}")


def voice_pool(split: str) -> list[tuple[str, str]]:
    """(language, variant) combinations allowed in `split` (train and test share one pool;
    `val` draws from that pool and from `val_only_pool()`)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "val":
        return voice_pool("train") + val_only_pool()
    every = itertools.product(IN_LANGUAGES + OOD_LANGUAGES, IN_VARIANTS + OOD_VARIANTS)
    held_out = [(lang, var) for lang, var in every
                if lang in OOD_LANGUAGES or var in OOD_VARIANTS]
    if split == "ood":
        return held_out
    return list(itertools.product(IN_LANGUAGES, IN_VARIANTS))


def val_only_pool() -> list[tuple[str, str]]:
    """Voices of the `val` split that no other split uses: train accents, unseen variants."""
    return list(itertools.product(IN_LANGUAGES, VAL_VARIANTS))


def draw_voices(rng: np.random.Generator, split: str,
                cfg: VoiceConfig = VoiceConfig()) -> tuple[Speaker, Speaker]:
    """Two people: espeak voices of the split's pool, one of them the Piper voice in
    `cfg.piper_share` of clips (no draw at all when the share is 0)."""
    pair = _draw_espeak(rng, split)
    if cfg.piper_share == 0.0 or rng.random() >= cfg.piper_share:
        return pair
    if split == "val":   # the known person: Piper's train voice is a known one
        slot = 1 if pair[0].variant in VAL_VARIANTS else 0
    else:
        slot = int(rng.integers(2))
    base = PIPER_OOD if split == "ood" else PIPER_IN
    piper = replace(base, length_scale=float(rng.uniform(*cfg.piper_length_scale)),
                    person=pair[slot].name)  # the replaced person keeps their face
    return (piper, pair[1]) if slot == 0 else (pair[0], piper)


def _draw_espeak(rng: np.random.Generator, split: str) -> tuple[Voice, Voice]:
    """Two people with different variants (so they sound like two people) from the pool; in
    `val`, one known person and one new voice, in random order."""
    if split == "val":
        known = voice_pool("train")
        new = val_only_pool()
        pair = [known[rng.integers(len(known))], new[rng.integers(len(new))]]
        if rng.integers(2):
            pair.reverse()
        return _with_prosody(rng, pair[0]), _with_prosody(rng, pair[1])
    pool = voice_pool(split)
    first = pool[rng.integers(len(pool))]
    others = [c for c in pool if c[1] != first[1]]
    second = others[rng.integers(len(others))]
    return _with_prosody(rng, first), _with_prosody(rng, second)


def _with_prosody(rng: np.random.Generator, combo: tuple[str, str]) -> Voice:
    return Voice(language=combo[0], variant=combo[1], pitch=int(rng.integers(25, 76)),
                 pitch_range=int(rng.integers(30, 86)), speed_wpm=int(rng.integers(140, 186)))
