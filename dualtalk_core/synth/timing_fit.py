"""How well a `Speech` phoneme track fits its own audio: the figures in SYNTHETIC_CORPUS.md.

A frame (10 ms) sounds when its level is within `floor_db` of the utterance's loudest frame.
Vowels should sound and pauses should be silent; where a pause of at least 80 ms meets a vowel
or sonorant (whose sound starts and stops with the phoneme, unlike a stop's silent closure),
the track's boundary should be where the sound starts or stops.

`python -m dualtalk_core.synth.timing_fit [--sentences N]` prints the figures for the Piper
voice and, for reference, one espeak-ng voice (libespeak-ng's own phoneme events).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from dualtalk_core.synth.espeak import PAUSE, Speech, Voice
from dualtalk_core.synth.visemes import phoneme_classes

_HOP_S = 0.01
_MIN_PAUSE_S = 0.08
_SEARCH_S = 0.15            # a boundary further than this from any sound is not counted
_VOWELS = {"open", "open_round", "mid", "schwa", "front", "round", "close_round"}
_SONORANT_SYMBOLS = set("mnŋlwjɹr")


@dataclass
class TimingFit:
    """Frame counts and boundary errors (ms, signed: + = the sound comes later than the
    track says) of one or more utterances."""

    vowel_frames: int = 0
    vowel_sounding: int = 0
    pause_frames: int = 0
    pause_silent: int = 0
    onset_error_ms: tuple[float, ...] = ()
    end_error_ms: tuple[float, ...] = ()

    def __add__(self, other: TimingFit) -> TimingFit:
        return TimingFit(self.vowel_frames + other.vowel_frames,
                         self.vowel_sounding + other.vowel_sounding,
                         self.pause_frames + other.pause_frames,
                         self.pause_silent + other.pause_silent,
                         self.onset_error_ms + other.onset_error_ms,
                         self.end_error_ms + other.end_error_ms)

    def summary(self) -> str:
        """One line: shares of frames and median / 90th percentile absolute boundary errors."""
        def errors(x: tuple[float, ...]) -> str:
            a = np.abs(np.asarray(x)) if x else np.zeros(1)
            return f"median {np.median(a):.0f} ms, p90 {np.percentile(a, 90):.0f} ms (n={len(x)})"
        vowels = 100 * self.vowel_sounding / max(1, self.vowel_frames)
        pauses = 100 * self.pause_silent / max(1, self.pause_frames)
        return (f"vowel frames sounding {vowels:.1f} %, pause frames silent {pauses:.1f} %; "
                f"speech onset after a pause: {errors(self.onset_error_ms)}; speech end "
                f"before a pause: {errors(self.end_error_ms)}")


def _sonorant(phoneme: str) -> bool:
    return phoneme != PAUSE and (phoneme_classes(phoneme)[0] in _VOWELS
                                 or phoneme[0] in _SONORANT_SYMBOLS)


def sounding_frames(speech: Speech, floor_db: float = 35.0) -> tuple[np.ndarray, np.ndarray]:
    """(n,) bool: the 10 ms frames whose level is within `floor_db` of the loudest, and (n,)
    their centre times in seconds."""
    hop = int(round(speech.sample_rate * _HOP_S))
    n = len(speech.audio) // hop
    frames = speech.audio[: n * hop].reshape(n, hop).astype(np.float64)
    level = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return level > level.max() - floor_db, (np.arange(n) + 0.5) * _HOP_S


def _sounding_near(sound: np.ndarray, t: np.ndarray, boundary_s: float) -> np.ndarray:
    """Indices of the sounding frames within `_SEARCH_S` of a boundary."""
    return np.flatnonzero(sound & (np.abs(t - boundary_s) < _SEARCH_S))


def timing_fit(speech: Speech, floor_db: float = 35.0) -> TimingFit:
    """Compare `speech`'s phoneme track with the sound of its own audio."""
    sound, t = sounding_frames(speech, floor_db)
    names, starts = speech.phonemes, speech.phoneme_starts_s
    ends = np.append(starts[1:], speech.duration_s)
    fit = TimingFit()
    onsets: list[float] = []
    stops: list[float] = []
    for i, (name, t0, t1) in enumerate(zip(names, starts, ends)):
        inside = sound[(t >= t0) & (t < t1)]
        if name == PAUSE:
            fit.pause_frames += len(inside)
            fit.pause_silent += int((~inside).sum())
        elif phoneme_classes(name)[0] in _VOWELS:
            fit.vowel_frames += len(inside)
            fit.vowel_sounding += int(inside.sum())
        if name != PAUSE or t1 - t0 < _MIN_PAUSE_S:
            continue
        after, before = _sounding_near(sound, t, t1), _sounding_near(sound, t, t0)
        if i + 1 < len(names) and _sonorant(names[i + 1]) and len(after):
            onsets.append(1000.0 * (t[after[0]] - _HOP_S / 2 - t1))
        if i > 0 and _sonorant(names[i - 1]) and len(before):
            stops.append(1000.0 * (t[before[-1]] + _HOP_S / 2 - t0))
    fit.onset_error_ms, fit.end_error_ms = tuple(onsets), tuple(stops)
    return fit


def main(argv: list[str] | None = None) -> int:
    """Print the fit of the Piper voice and of one espeak-ng voice on corpus sentences."""
    from dualtalk_core.synth import espeak, piper_voice
    from dualtalk_core.synth.sentences import make_sentence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=60)
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    texts = [make_sentence(rng) for _ in range(args.sentences)]
    shifted = piper_voice.PiperSpeaker(shift=float(piper_voice.OOD_SHIFT))
    voices = {"piper": piper_voice.PiperSpeaker(), "piper (held-out shift)": shifted,
              "espeak en-us+m3": Voice("en-us", "m3")}
    for label, voice in voices.items():
        total = TimingFit()
        for k, text in enumerate(texts):
            speech = (espeak.synthesize(text, voice) if isinstance(voice, Voice)
                      else piper_voice.synthesize(text, voice, k))
            total = total + timing_fit(speech)
        print(f"{label}: {total.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
