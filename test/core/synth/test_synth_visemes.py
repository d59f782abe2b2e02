"""Visemes: vowels open the jaw, bilabials close the lips; coarticulated and in range."""
from __future__ import annotations

import numpy as np

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth.espeak import PAUSE, Voice, synthesize
from dualtalk_core.synth.visemes import phoneme_classes, viseme_curves

NAMES = get_rig("arkit52").names
JAW = NAMES.index("jawOpen")
PRESS = NAMES.index("mouthPressLeft")


def test_phoneme_classes():
    assert phoneme_classes("tʃ") == ["postalveolar"]
    assert phoneme_classes("aɪ") == ["open", "front"]
    assert phoneme_classes("ɑː") == ["open"]
    assert phoneme_classes("m") == ["bilabial"]
    assert phoneme_classes(PAUSE) == ["pause"]


def test_slow_track_reaches_targets():
    # 0.3 s per phoneme: _ a m a _  -> frames 0-7, 7-15, 15-22, 22-30, 30-37
    names = [PAUSE, "a", "m", "a", PAUSE]
    starts = np.arange(5) * 0.3
    c = viseme_curves(names, starts, 1.5, 38)
    assert c.shape == (38, 55) and c.dtype == np.float32
    assert c[11, JAW] > 0.4 and c[26, JAW] > 0.4          # vowel centres
    assert c[19, JAW] < 0.08 and c[19, PRESS] > 0.3        # m: lips pressed
    assert c[3, JAW] < 0.05 and c[36, JAW] < 0.05          # rest in pauses
    assert np.all(c[:, 52:] == 0)                           # no head channels


def test_espeak_speech_opens_for_vowels_and_closes_for_bilabials():
    speech = synthesize("a map, a bob, a mop, papa", Voice("en-us", "m1", speed_wpm=140))
    n = int(np.ceil(speech.duration_s * 25))
    c = viseme_curves(speech.phonemes, speech.phoneme_starts_s, speech.duration_s, n)
    ends = np.append(speech.phoneme_starts_s[1:], speech.duration_s)
    mids = ((speech.phoneme_starts_s + ends) / 2 * 25).astype(int)
    classes = [phoneme_classes(p)[0] for p in speech.phonemes]
    bil = [c[k, JAW] for k, cl in zip(mids, classes) if cl == "bilabial"]
    open_vowels = [c[k, JAW] for k, cl in zip(mids, classes) if cl in ("open", "open_round")]
    assert len(bil) >= 6 and len(open_vowels) >= 4
    assert np.mean(open_vowels) > 0.3
    assert np.mean(bil) < 0.5 * np.mean(open_vowels)
    assert max(c[k, PRESS] for k, cl in zip(mids, classes) if cl == "bilabial") > 0.25
