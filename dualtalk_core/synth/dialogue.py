"""A two-person dialogue on one timeline: turns of sentences, short overlaps, backchannels.

Every sentence is synthesised on its own, so its phoneme track, its phrase ends (pauses inside
and its voiced end) and whether it is a question are known exactly; these drive the visemes
and the partner-caused behaviour later.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualtalk_core.synth import piper_voice
from dualtalk_core.synth.espeak import PAUSE, Speech, synthesize
from dualtalk_core.synth.sentences import (BACKCHANNELS, is_question, make_sentence,
                                           spoken_form)
from dualtalk_core.synth.voices import Speaker

_MIN_PHRASE_PAUSE_S = 0.08  # a shorter pause inside a sentence is not a phrase boundary


@dataclass(frozen=True)
class DialogueConfig:
    """Turn-taking parameters (seconds unless named otherwise)."""

    min_rounds: int = 1
    max_rounds: int = 6
    min_duration_s: float = 10.0
    max_duration_s: float = 30.0
    sentence_gap_s: tuple[float, float] = (0.15, 0.45)
    turn_gap_s: tuple[float, float] = (-0.35, 0.6)   # negative = the next turn overlaps
    backchannel_prob: float = 0.5                   # per partner phrase end inside a turn
    backchannel_delay_s: tuple[float, float] = (0.05, 0.35)
    lead_in_s: tuple[float, float] = (0.3, 0.9)
    tail_s: tuple[float, float] = (0.4, 1.0)


@dataclass
class Utterance:
    """One sentence or backchannel of one person, placed at `start_s` on the clip timeline."""

    person: int
    kind: str                      # "sentence" or "backchannel"
    text: str
    start_s: float
    speech: Speech
    turn: int                      # index of the turn it belongs to (-1 for backchannels)
    smile: tuple[float, float, float] | None = None   # (onset_s, offset_s, amplitude)

    @property
    def question(self) -> bool:
        return self.kind == "sentence" and is_question(self.text)

    @property
    def voiced_end_s(self) -> float:
        """End of the last sounding phoneme (the audio carries trailing silence)."""
        names, starts = self.speech.phonemes, self.speech.phoneme_starts_s
        for i in range(len(names) - 1, -1, -1):
            if names[i] != PAUSE:
                end = starts[i + 1] if i + 1 < len(starts) else self.speech.duration_s
                return self.start_s + float(end)
        return self.start_s

    @property
    def end_s(self) -> float:
        return self.start_s + self.speech.duration_s

    def phrase_ends_s(self) -> list[float]:
        """Clip times where a phrase ends: pauses inside the sentence, then its voiced end."""
        names, starts = self.speech.phonemes, self.speech.phoneme_starts_s
        inner = []
        voiced_end = self.voiced_end_s
        for i in range(1, len(names) - 1):
            gap = starts[i + 1] - starts[i]
            if names[i] == PAUSE and names[i - 1] != PAUSE and gap >= _MIN_PHRASE_PAUSE_S:
                t = self.start_s + float(starts[i])
                if t < voiced_end - 0.2:
                    inner.append(t)
        return inner + [voiced_end]


def speak(rng: np.random.Generator, text: str, voice: Speaker) -> Speech:
    """`text` (written form) in `voice`'s engine. A Piper voice takes a seed from `rng` for its
    noise; an espeak-ng voice draws nothing, so espeak-only clips are what they always were."""
    if isinstance(voice, piper_voice.PiperSpeaker):
        return piper_voice.synthesize(text, voice, int(rng.integers(2 ** 32)))
    return synthesize(spoken_form(text), voice)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _plan_turn(rng: np.random.Generator, person: int, voice: Speaker, turn: int, t: float,
               budget_s: float, limit_s: float, cfg: DialogueConfig) -> list[Utterance]:
    """Sentences of one turn from time `t` until the turn lasts `budget_s` (at least one)."""
    out: list[Utterance] = []
    start = t
    while not out or t - start < budget_s:
        text = make_sentence(rng)
        utt = Utterance(person, "sentence", text, t, speak(rng, text, voice), turn)
        if utt.voiced_end_s > limit_s:
            break
        out.append(utt)
        t = utt.voiced_end_s + _uniform(rng, cfg.sentence_gap_s)
    return out


def plan_turns(rng: np.random.Generator, voices: tuple[Speaker, Speaker],
               cfg: DialogueConfig) -> list[Utterance]:
    """Alternating turns: `rounds` exchanges (more if the clip is still shorter than the
    minimum), each turn a share of a random target duration, never past the maximum."""
    rounds = int(rng.integers(cfg.min_rounds, cfg.max_rounds + 1))
    target = _uniform(rng, (cfg.min_duration_s, cfg.max_duration_s))
    budget = max(1.0, target / (2 * rounds) - 0.5)
    first = int(rng.integers(2))
    limit = cfg.max_duration_s - cfg.tail_s[1]
    t = _uniform(rng, cfg.lead_in_s)
    utts: list[Utterance] = []
    turn = 0
    while turn < 2 * rounds or t < cfg.min_duration_s:
        person = first ^ (turn % 2)
        turn_utts = _plan_turn(rng, person, voices[person], turn, t, budget, limit, cfg)
        if not turn_utts:
            break
        utts.extend(turn_utts)
        t = turn_utts[-1].voiced_end_s + _uniform(rng, cfg.turn_gap_s)
        turn += 1
    return utts


def _busy(utts: list[Utterance], person: int, t0: float, t1: float, margin: float) -> bool:
    return any(u.person == person and u.start_s - margin < t1 and t0 < u.end_s + margin
               for u in utts)


def add_backchannels(rng: np.random.Generator, utts: list[Utterance],
                     voices: tuple[Speaker, Speaker], cfg: DialogueConfig) -> list[Utterance]:
    """The listener says mm-hm/yeah/... shortly after some of the speaker's phrase ends."""
    added: list[Utterance] = []
    last_turn_end = {u.turn: u.voiced_end_s for u in utts}
    for utt in utts:
        for end in utt.phrase_ends_s():
            if end >= last_turn_end[utt.turn] - 1e-6 or rng.random() >= cfg.backchannel_prob:
                continue
            listener = 1 - utt.person
            text = BACKCHANNELS[rng.integers(len(BACKCHANNELS))]
            start = end + _uniform(rng, cfg.backchannel_delay_s)
            bc = Utterance(listener, "backchannel", text, start,
                           speak(rng, text, voices[listener]), -1)
            if not _busy(utts + added, listener, bc.start_s, bc.end_s, 0.2):
                added.append(bc)
    return sorted(utts + added, key=lambda u: (u.start_s, u.person))


def plan_dialogue(rng: np.random.Generator, voices: tuple[Speaker, Speaker],
                  cfg: DialogueConfig = DialogueConfig()) -> tuple[list[Utterance], float]:
    """Utterances of both people (sorted by start) and the clip duration in seconds."""
    utts = add_backchannels(rng, plan_turns(rng, voices, cfg), voices, cfg)
    duration = max(u.end_s for u in utts) + _uniform(rng, cfg.tail_s)
    # Trailing silence may be cut to respect the maximum; speech never is.
    voiced = max(u.voiced_end_s for u in utts) + 0.1
    return utts, max(voiced, min(duration, cfg.max_duration_s))
