"""Listener behaviour is caused by the partner, with the configured delays."""
from __future__ import annotations

import numpy as np

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth import shapes
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


def _style(delay: float = 0.45, mimic_delay: float = 0.6) -> Style:
    return Style(expressiveness=1.0, mirror_delay_s=delay, mirror_gain=0.8,
                 blink_rate_hz=0.3, head_f0_rad=0.04, head_energy_rad=0.04, smile_jaw=0.2,
                 mimic_delay_s=mimic_delay, mimic_gain=0.35)


def _face(person: int, utts: list[Utterance], delay: float = 0.45,
          partner_head: tuple[np.ndarray, np.ndarray] | None = None,
          cfg: BehaviourConfig = BehaviourConfig()) -> tuple[np.ndarray, list]:
    silent = np.zeros(N, np.float32)
    return person_behaviour(person, utts, N, silent, silent - 80.0, _style(delay), cfg,
                            np.random.default_rng(0), partner_head)


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


def _peak_lag_s(cause: np.ndarray, effect: np.ndarray) -> float:
    """Lag (0..1 s) at which `effect` best matches `cause` (cross-correlation peak)."""
    cause, effect = cause - cause.mean(), effect - effect.mean()
    xc = [np.dot(cause[: len(cause) - k], effect[k:]) for k in range(26)]
    return int(np.argmax(xc)) / FPS


def test_listener_opens_the_mouth_in_mirrored_smiles_only_while_the_partner_smiles():
    partner = [_utt(0, "Well, it was lovely.", 1.0, 3.0, 0, (1.5, 4.5, 0.7)),
               _utt(0, "It rained all day.", 9.0, 3.0, 0)]
    face, _ = _listener(partner)
    jaw = face[:, NAMES.index("jawOpen")]
    smile = face[:, NAMES.index("mouthSmileLeft")]
    assert jaw[int(3.5 * FPS)] > 0.1                       # mirrored smile: 0.2 * 0.8 * 0.7
    assert abs(jaw[int(3.5 * FPS)] - 0.2 * smile[int(3.5 * FPS)]) < 1e-3
    assert jaw[int(10.5 * FPS)] == 0.0                      # no smile, silent: mouth closed


def test_inbreath_opens_the_jaw_between_the_partner_turn_end_and_the_answer():
    question = _utt(0, "Have you been there?", 1.0, 2.0, 0)
    answer = _utt(1, "Yes, last year.", 3.7, 1.5, 1)        # 0.7 s after the question ends
    overlap = _utt(0, "Oh nice.", 5.0, 1.0, 2)              # starts before the answer ends
    face, events = _face(1, [question, answer, overlap], cfg=BehaviourConfig(inbreath_prob=1.0))
    jaw = face[:, NAMES.index("jawOpen")]
    (ev,) = [e for e in events if e["type"] == "inbreath"]
    assert ev["cause_t"] == round(question.voiced_end_s, 3)
    assert 0.0 <= ev["t"] - ev["cause_t"] <= 0.15
    assert jaw[int(3.55 * FPS)] > 0.05                      # open just before the answer
    assert jaw[int(2.5 * FPS)] == 0.0                       # closed while the partner speaks
    _, partner_events = _face(0, [question, answer, overlap],
                              cfg=BehaviourConfig(inbreath_prob=1.0))
    assert not [e for e in partner_events if e["type"] == "inbreath"]   # overlapping turn


def test_listener_head_echoes_the_partner_head_with_the_mimic_delay_while_silent():
    rng = np.random.default_rng(3)
    sub = shapes.grid(N)
    partner_pitch = shapes.smooth(rng.normal(0.0, 0.05, len(sub)), 0.2)
    partner_roll = shapes.smooth(rng.normal(0.0, 0.03, len(sub)), 0.2)
    still = np.zeros(len(sub))
    face, _ = _face(1, [], partner_head=(partner_pitch, partner_roll))
    baseline, _ = _face(1, [], partner_head=(still, still))
    echo = (face - baseline)[:, NAMES.index("headPitch")].astype(np.float64)
    assert abs(_peak_lag_s(shapes.to_frames(partner_pitch), echo) - 0.6) <= 0.041
    assert np.std(echo) > 0.3 * np.std(shapes.to_frames(partner_pitch))
    own = [_utt(1, "I am talking now.", 5.0, 10.0, 0)]
    talking, _ = _face(1, own, partner_head=(partner_pitch, partner_roll))
    talking_still, _ = _face(1, own, partner_head=(still, still))
    inside = slice(int(6.0 * FPS), int(14.0 * FPS))
    assert np.abs((talking - talking_still)[inside, NAMES.index("headPitch")]).max() < 1e-6
