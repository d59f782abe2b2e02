"""Non-verbal behaviour of each person, much of it caused by the partner.

Listening (caused by the partner, so a model that listens can predict it):
- nods (headPitch dips) shortly after the partner's phrase ends, always with a backchannel;
- smiles mirroring the partner's smiles `mirror_delay_s` later, lips parted (every smile opens
  the jaw a little: open-mouth smiles);
- the mouth opening for the in-breath before answering, which starts just after the partner's
  turn ends (speakers inhale for their answer within a few hundred ms of the question's end);
- head pitch and roll echoing the partner's speech-driven head motion `mimic_delay_s` later
  (head-movement coordination between listener and speaker);
- brow raises (browInnerUp, browOuterUp) right after the partner's questions;
- blinks at the partner's turn ends and, often, at the partner's phrase ends (listeners' blinks
  synchronise with the speaker's pauses).
Speaking (caused by one's own voice): head pitch/roll following F0, head energy, brows on pitch
peaks, smiles on some sentences, gaze aversion at turn starts, blinks at one's own turn and
phrase ends.
Both: a low rate of random blinks, fixation jitter and idle head sway (the unpredictable part).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth import shapes
from dualtalk_core.synth.dialogue import Utterance

_IDX = {n: i for i, n in enumerate(get_rig("arkit52").names)}
Events = list[dict]
_BLINK_REFRACTORY_S = 0.5


@dataclass(frozen=True)
class BehaviourConfig:
    """Rules and their parameters; ranges are (low, high) drawn uniformly per event or person."""

    nod_prob: float = 0.8                       # per partner phrase end, when not speaking
    nod_delay_s: tuple[float, float] = (0.1, 0.3)
    nod_amp_rad: tuple[float, float] = (0.08, 0.15)
    nod_freq_hz: tuple[float, float] = (1.8, 2.8)
    own_smile_prob: float = 0.3                 # per own sentence (0.85 for exclamations)
    smile_amp: tuple[float, float] = (0.4, 0.8)
    mirror_delay_s: tuple[float, float] = (0.35, 0.55)   # per listener and clip
    mirror_gain: tuple[float, float] = (0.7, 1.0)
    brow_delay_s: tuple[float, float] = (0.0, 0.2)       # after the question's voiced end
    brow_amp: tuple[float, float] = (0.45, 0.75)
    brow_hold_s: tuple[float, float] = (0.5, 0.9)
    asker_brow_amp: tuple[float, float] = (0.3, 0.5)     # the asker's own raise, last 0.6 s
    # Conversational blinks cluster at pauses and turn ends; the rest come at a low random rate
    # (together ~0.3-0.45 per second, the usual rate in conversation).
    blink_rate_hz: tuple[float, float] = (0.04, 0.08)    # random blinks, per person
    turn_end_blink_prob: float = 0.8
    phrase_end_blink_prob: float = 0.5          # per own or partner phrase end inside a turn
    gaze_jitter_rad: float = 0.03               # fixation jitter std (random)
    gaze_aversion_prob: float = 0.6             # per own turn start
    head_f0_rad: tuple[float, float] = (0.03, 0.06)      # head pitch per F0 z-score
    head_energy_rad: tuple[float, float] = (0.03, 0.06)  # head pitch per energy onset
    idle_sway_rad: float = 0.01
    expressiveness: tuple[float, float] = (0.75, 1.25)   # per person amplitude scale
    smile_jaw: tuple[float, float] = (0.12, 0.25)        # jawOpen per unit of smile, per person
    inbreath_prob: float = 0.7                  # per own turn that answers a partner turn
    inbreath_delay_s: tuple[float, float] = (0.0, 0.15)  # after the partner's voiced end
    inbreath_jaw: tuple[float, float] = (0.06, 0.14)
    mimic_delay_s: tuple[float, float] = (0.4, 0.8)      # per listener and clip
    mimic_gain: tuple[float, float] = (0.25, 0.45)


@dataclass(frozen=True)
class Style:
    """One person's draw of the per-person parameters for one clip."""

    expressiveness: float
    mirror_delay_s: float
    mirror_gain: float
    blink_rate_hz: float
    head_f0_rad: float
    head_energy_rad: float
    smile_jaw: float
    mimic_delay_s: float
    mimic_gain: float


def draw_style(rng: np.random.Generator, cfg: BehaviourConfig) -> Style:
    u = [rng.uniform(*r) for r in (cfg.expressiveness, cfg.mirror_delay_s, cfg.mirror_gain,
                                   cfg.blink_rate_hz, cfg.head_f0_rad, cfg.head_energy_rad,
                                   cfg.smile_jaw, cfg.mimic_delay_s, cfg.mimic_gain)]
    return Style(*[float(x) for x in u])


def plan_smiles(rng: np.random.Generator, utts: list[Utterance],
                cfg: BehaviourConfig) -> None:
    """Give some sentences an own smile (onset, offset, amplitude), set on `Utterance.smile`."""
    for u in utts:
        if u.kind != "sentence":
            continue
        prob = 0.85 if u.text.rstrip().endswith("!") else cfg.own_smile_prob
        if rng.random() < prob:
            dur = u.voiced_end_s - u.start_s
            on = u.start_s + float(rng.uniform(0.0, 0.5)) * dur
            u.smile = (on, u.voiced_end_s + float(rng.uniform(0.2, 0.8)),
                       float(rng.uniform(*cfg.smile_amp)))


def _speaking(u: list[Utterance], t: float) -> bool:
    return any(x.kind == "sentence" and x.start_s <= t <= x.voiced_end_s for x in u)


def _nods(t: np.ndarray, own: list[Utterance], partner: list[Utterance], sty: Style,
          cfg: BehaviourConfig, rng: np.random.Generator, events: Events) -> np.ndarray:
    """Listener nods after the partner's phrase ends (with own backchannels: always)."""
    pitch = np.zeros_like(t)
    bcs = [u.start_s for u in own if u.kind == "backchannel"]
    for u in partner:
        if u.kind != "sentence":
            continue
        for end in u.phrase_ends_s():
            onset = end + float(rng.uniform(*cfg.nod_delay_s))
            near_bc = [b for b in bcs if end < b < end + 0.6]
            if _speaking(own, onset) or (not near_bc and rng.random() >= cfg.nod_prob):
                continue
            if near_bc:
                onset = near_bc[0] - 0.05
            amp = float(rng.uniform(*cfg.nod_amp_rad)) * sty.expressiveness
            freq, cycles = float(rng.uniform(*cfg.nod_freq_hz)), int(rng.integers(1, 3))
            pitch += shapes.nod(t, onset, amp, freq, cycles)
            events.append({"type": "nod", "t": round(onset, 3), "cause_t": round(end, 3)})
    return pitch


def _smiles(t: np.ndarray, own: list[Utterance], partner: list[Utterance], sty: Style,
            events: Events) -> np.ndarray:
    """Own smiles plus the partner's own smiles mirrored `mirror_delay_s` later."""
    smile = np.zeros_like(t)
    for u in own:
        if u.smile is not None:
            on, off, amp = u.smile
            smile = np.maximum(smile, amp * shapes.envelope(t, on, off, 0.25, 0.4))
    for u in partner:
        if u.smile is not None:
            on, off, amp = u.smile
            d = sty.mirror_delay_s
            smile = np.maximum(smile, sty.mirror_gain * amp
                               * shapes.envelope(t, on + d, off + d, 0.25, 0.4))
            events.append({"type": "mirror_smile", "t": round(on + d, 3), "cause_t": round(on, 3)})
    return smile


def _brows(t: np.ndarray, own: list[Utterance], partner: list[Utterance], sty: Style,
           cfg: BehaviourConfig, rng: np.random.Generator, events: Events) -> np.ndarray:
    """Brow raise after each partner question; a smaller one while asking one's own."""
    brow = np.zeros_like(t)
    for u in own:
        if u.question:
            end = u.voiced_end_s
            amp = float(rng.uniform(*cfg.asker_brow_amp))
            brow = np.maximum(brow, amp * shapes.envelope(t, end - 0.6, end, 0.15, 0.3))
    for u in partner:
        if u.question:
            end = u.voiced_end_s
            on = end + float(rng.uniform(*cfg.brow_delay_s))
            hold = float(rng.uniform(*cfg.brow_hold_s))
            amp = float(rng.uniform(*cfg.brow_amp)) * min(sty.expressiveness, 1.2)
            brow = np.maximum(brow, amp * shapes.envelope(t, on, on + hold, 0.15, 0.3))
            events.append({"type": "brow_raise", "t": round(on, 3), "cause_t": round(end, 3)})
    return brow


def _inbreath_jaw(t: np.ndarray, own: list[Utterance], partner: list[Utterance], sty: Style,
                  cfg: BehaviourConfig, rng: np.random.Generator, events: Events) -> np.ndarray:
    """jawOpen of the in-breath before an answer: from just after the partner's turn ends
    until one's own first sentence starts (then the visemes take over). Answers that overlap
    the partner's turn, or follow it too closely for a visible opening, get none."""
    jaw = np.zeros_like(t)
    partner_ends = _turn_ends(partner)
    for start in _turn_starts(own):
        answered = [e for e in partner_ends if start - 3.0 < e <= start]
        if not answered or rng.random() >= cfg.inbreath_prob:
            continue
        on = answered[-1] + float(rng.uniform(*cfg.inbreath_delay_s))
        if start - on < 0.15:
            continue
        amp = float(rng.uniform(*cfg.inbreath_jaw)) * sty.expressiveness
        jaw = np.maximum(jaw, amp * shapes.envelope(t, on, start, 0.15, 0.15))
        events.append({"type": "inbreath", "t": round(on, 3), "cause_t": round(answered[-1], 3)})
    return jaw


def _mimicry(t: np.ndarray, own: list[Utterance], partner_head: tuple[np.ndarray, np.ndarray],
             sty: Style) -> tuple[np.ndarray, np.ndarray]:
    """(pitch, roll) echo of the partner's speech-driven head motion, `mimic_delay_s` later
    and only while not speaking oneself."""
    speaking = np.zeros_like(t)
    for u in own:
        if u.kind == "sentence":
            speaking = np.maximum(speaking, shapes.envelope(t, u.start_s, u.voiced_end_s,
                                                            0.2, 0.3))
    gain = sty.mimic_gain * (1.0 - speaking)
    return tuple(gain * np.interp(t - sty.mimic_delay_s, t, x, left=0.0)  # type: ignore
                 for x in partner_head)


def _turn_starts(utts: list[Utterance]) -> list[float]:
    starts: dict[int, float] = {}
    for u in utts:
        if u.kind == "sentence":
            starts[u.turn] = min(starts.get(u.turn, np.inf), u.start_s)
    return sorted(starts.values())


def _turn_ends(utts: list[Utterance]) -> list[float]:
    ends: dict[int, float] = {}
    for u in utts:
        if u.kind == "sentence":
            ends[u.turn] = max(ends.get(u.turn, 0.0), u.voiced_end_s)
    return sorted(ends.values())


def _blinks(t: np.ndarray, own: list[Utterance], partner: list[Utterance], sty: Style,
            cfg: BehaviourConfig, rng: np.random.Generator, events: Events) -> np.ndarray:
    """Blinks just after own and partner turn ends and some phrase ends, plus random ones
    that keep clear of those (a random blink never swallows a caused one) and of each other."""
    duration = float(t[-1])
    caused: list[float] = []
    turn_ends = _turn_ends(own) + _turn_ends(partner)
    for end in turn_ends:
        if rng.random() < cfg.turn_end_blink_prob:
            caused.append(end + float(rng.uniform(0.05, 0.3)))
    phrase_ends = [e for u in own + partner if u.kind == "sentence" for e in u.phrase_ends_s()]
    for end in phrase_ends:
        if min((abs(end - e) for e in turn_ends), default=1.0) > 0.3 \
                and rng.random() < cfg.phrase_end_blink_prob:
            caused.append(end + float(rng.uniform(0.05, 0.25)))
    random_times = np.cumsum(rng.exponential(1.0 / sty.blink_rate_hz, 64))
    times = sorted(caused)
    for onset in random_times:
        if all(abs(onset - c) >= _BLINK_REFRACTORY_S for c in times):
            times.append(float(onset))
            times.sort()
    out = np.zeros_like(t)
    last = -1.0
    for onset in times:
        if last + _BLINK_REFRACTORY_S <= onset < duration:
            out = np.maximum(out, shapes.blink(t, onset))
            last = onset
            if onset in caused:
                events.append({"type": "caused_blink", "t": round(onset, 3)})
    return out


def _gaze(t: np.ndarray, own: list[Utterance], cfg: BehaviourConfig,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaze (h = to own left, v = up; 0 = at the partner): small fixation jitter, and
    aversion for 0.8-2 s at some own turn starts (thinking while starting to speak)."""
    h, v = np.zeros_like(t), np.zeros_like(t)
    k = 0.0
    while k < t[-1]:
        dur = float(rng.uniform(0.8, 3.0))
        sel = (t >= k) & (t < k + dur)
        h[sel], v[sel] = rng.normal(0.0, cfg.gaze_jitter_rad, 2)
        k += dur
    for start in _turn_starts(own):
        if rng.random() < cfg.gaze_aversion_prob:
            on = start + float(rng.uniform(0.0, 0.4))
            sel = (t >= on) & (t < on + float(rng.uniform(0.8, 2.0)))
            ang = float(rng.uniform(0, 2 * np.pi))
            mag = float(rng.uniform(0.3, 0.6))
            h[sel], v[sel] = mag * np.cos(ang), mag * np.sin(ang) * 0.6
    return shapes.smooth(h, 0.03), shapes.smooth(v, 0.03)


def speech_head(f0z: np.ndarray, energy_db: np.ndarray, sty: Style,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A person's voice -> their (pitch, roll, brow) on the sub-frame grid: head rises with F0
    (negative pitch = chin up), dips on loudness onsets, brows lift on pitch peaks."""
    f0 = shapes.smooth(shapes.upsample(f0z.astype(np.float64)), 0.12)
    loud = np.clip((energy_db.astype(np.float64) + 50.0) / 35.0, 0.0, 1.0)
    onset = np.clip(np.diff(loud, prepend=loud[:1]), 0.0, None)
    onset = shapes.smooth(shapes.upsample(onset), 0.08) * 4.0
    pitch = sty.expressiveness * (-sty.head_f0_rad * f0 + sty.head_energy_rad * onset)
    roll = 0.4 * sty.head_f0_rad * sty.expressiveness * f0
    brow = 0.08 * sty.expressiveness * np.clip(f0, 0.0, None)
    return pitch, roll, brow


def _set_pair(out: np.ndarray, name: str, values: np.ndarray) -> None:
    out[:, _IDX[name + "Left"]] += values
    out[:, _IDX[name + "Right"]] += values


def _eyes(out: np.ndarray, h: np.ndarray, v: np.ndarray, blink: np.ndarray,
          smile: np.ndarray) -> None:
    """Gaze and blinks -> eyeLook*/eyeBlink/eyeSquint channels (h > 0: to own left)."""
    left, right = np.clip(h, 0, None), np.clip(-h, 0, None)
    out[:, _IDX["eyeLookOutLeft"]] += left
    out[:, _IDX["eyeLookInRight"]] += left
    out[:, _IDX["eyeLookInLeft"]] += right
    out[:, _IDX["eyeLookOutRight"]] += right
    _set_pair(out, "eyeLookUp", np.clip(v, 0, None))
    _set_pair(out, "eyeLookDown", np.clip(-v, 0, None) + 0.3 * blink)
    _set_pair(out, "eyeBlink", blink)
    _set_pair(out, "eyeSquint", 0.35 * smile)


def person_behaviour(person: int, utts: list[Utterance], n_frames: int, f0z: np.ndarray,
                     energy_db: np.ndarray, style: Style, cfg: BehaviourConfig,
                     rng: np.random.Generator,
                     partner_head: tuple[np.ndarray, np.ndarray] | None = None,
                     ) -> tuple[np.ndarray, Events]:
    """One person's non-verbal channels: (n_frames, 55) arkit52 values (mouth/jaw only for
    smiles and in-breaths; visemes are added by the caller) and the list of caused events.

    `f0z` and `energy_db` are (n_frames,) tracks of this person's own voice; `partner_head`
    is the partner's speech-driven (pitch, roll) from `speech_head` (None: no mimicry).
    """
    own = [u for u in utts if u.person == person]
    partner = [u for u in utts if u.person != person]
    t = shapes.grid(n_frames)
    events: Events = []
    nods = _nods(t, own, partner, style, cfg, rng, events)
    smile = _smiles(t, own, partner, style, events)
    brow = _brows(t, own, partner, style, cfg, rng, events)
    blink = _blinks(t, own, partner, style, cfg, rng, events)
    gaze_h, gaze_v = _gaze(t, own, cfg, rng)
    inbreath = _inbreath_jaw(t, own, partner, style, cfg, rng, events)
    s_pitch, s_roll, s_brow = speech_head(f0z, energy_db, style)
    m_pitch, m_roll = (_mimicry(t, own, partner_head, style) if partner_head is not None
                       else (0.0, 0.0))
    sway = [shapes.ou_noise(rng, len(t), cfg.idle_sway_rad * style.expressiveness, 1.5)
            for _ in range(3)]
    out = np.zeros((len(t), len(_IDX)), np.float64)
    out[:, _IDX["headPitch"]] = nods + s_pitch + m_pitch + sway[0]
    out[:, _IDX["headYaw"]] = 0.25 * shapes.smooth(gaze_h, 0.15) + 2.0 * sway[1]
    out[:, _IDX["headRoll"]] = s_roll + m_roll + 0.5 * sway[2]
    out[:, _IDX["jawOpen"]] = style.smile_jaw * smile + inbreath
    brow_total = brow + s_brow
    out[:, _IDX["browInnerUp"]] = brow_total
    _set_pair(out, "browOuterUp", 0.8 * brow_total)
    _set_pair(out, "mouthSmile", smile)
    _set_pair(out, "cheekSquint", 0.4 * smile)
    _set_pair(out, "mouthDimple", 0.15 * smile)
    _eyes(out, gaze_h, gaze_v, blink, smile)
    frames = shapes.to_frames(out)  # (n_frames * SUB, 55) -> (n_frames, 55)
    return frames.astype(np.float32), sorted(events, key=lambda e: e["t"])
