"""Listener behaviour is caused by the partner, with the configured delays."""
from __future__ import annotations

import numpy as np

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth.behaviour import BehaviourConfig, Style, person_behaviour
from dualtalk_core.synth.dialogue import Utterance
from dualtalk_core.synth.espeak import PAUSE, Speech

NAMES = get_rig("arkit52").names
FPS = 25
N = 30 * FPS


def _utt(person: int, text: str, start: float, dur: float, turn: int,
         smile: tuple[float, float, float] | None = None) -> Utterance:
    """A fake sentence: one vowel for `dur` seconds, then a pause (no espeak needed)."""
    speech = Speech(np.zeros(int((dur + 0.2) * 22050), np.float32), 22050, ("a", PAUSE),
                    np.array([0.0, dur]), np.array([0.0]))
    return Utterance(person, "sentence", text, start, speech, turn, smile)


def _face(person: int, utts: list[Utterance], delay: float = 0.45) -> tuple[np.ndarray, list]:
    style = Style(expressiveness=1.0, mirror_delay_s=delay, mirror_gain=0.8,
                  blink_rate_hz=0.3, head_f0_rad=0.04, head_energy_rad=0.04)
    silent = np.zeros(N, np.float32)
    return person_behaviour(person, utts, N, silent, silent - 80.0, style, BehaviourConfig(),
                            np.random.default_rng(0))


def _listener(partner: list[Utterance], delay: float = 0.45) -> tuple[np.ndarray, list]:
    return _face(1, partner, delay)


def test_listener_smile_follows_partner_smile_with_the_mirror_delay():
    rng = np.random.default_rng(1)
    partner, t = [], 0.5
    for i in range(8):
        dur = float(rng.uniform(1.5, 3.0))
        smile = (t + 0.3, t + dur + 0.4, 0.6) if i % 2 == 0 else None
        partner.append(_utt(0, "Well, it was lovely.", t, dur, 0, smile))
        t += dur + 0.5
    for delay in (0.32, 0.45, 0.58):
        face, events = _listener(partner, delay)
        mine = face[:, NAMES.index("mouthSmileLeft")].astype(np.float64)
        theirs = _face(0, partner)[0][:, NAMES.index("mouthSmileLeft")].astype(np.float64)
        mine, theirs = mine - mine.mean(), theirs - theirs.mean()
        lags = np.arange(0, 26)  # 0..1 s
        xc = [np.dot(theirs[: N - k], mine[k:]) for k in lags]
        peak_s = lags[int(np.argmax(xc))] / FPS
        assert 0.3 <= peak_s <= 0.6
        assert abs(peak_s - delay) <= 0.041
        assert sum(e["type"] == "mirror_smile" for e in events) == 4


def test_nods_follow_partner_phrase_ends_and_brows_follow_questions():
    partner = [_utt(0, "I went to the park.", 1.0, 2.0, 0),
               _utt(0, "Have you been there?", 6.0, 2.0, 0),
               _utt(0, "It was great.", 12.0, 2.0, 2),
               _utt(0, "Did you hear about it?", 18.0, 2.0, 2)]
    face, events = _listener(partner)
    pitch = face[:, NAMES.index("headPitch")]
    brow = face[:, NAMES.index("browInnerUp")]
    nods = [e for e in events if e["type"] == "nod"]
    assert len(nods) >= 2
    for nod in nods:
        assert 0.05 <= nod["t"] - nod["cause_t"] <= 0.4
        k = int(nod["t"] * FPS)
        assert pitch[k: k + 15].max() > pitch[k - 2] + 0.04  # chin goes down by > 2 degrees
    for u in partner:
        peak = brow[int(u.voiced_end_s * FPS): int((u.voiced_end_s + 1.0) * FPS)].max()
        assert (peak > 0.3) == u.question
