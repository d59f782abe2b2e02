"""What the fuzzer publishes: a valid conversation, and every bad kind of message mixed into it.

The valid half is what a robot hears and sees: both voices as 16 kHz S16LE chunks of 20-40 ms
on continuous timelines (stamped with their first sample's ROS time, published once complete,
as a microphone driver does; now and then one voice pauses 0.2-0.8 s: either held back and
then flushed at once, a delivery stall and a burst, or skipped, a hole in its timeline), and
the partner's face at 25 fps (ARKit for 10 s, then FLAME for 10 s). The hostile half
(`Hostile`) is a Poisson stream of bad messages, each of a kind drawn from the builders below
with a fixed-seed generator, plus 10x bursts of copies. Each planned message says which input
it enters and what it is; whether the node must reject it is `input_contract`'s business.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from builtin_interfaces.msg import Time

from dualtalk_core.rigs import get_rig
from dualtalk_core.units import FRAME_S, SAMPLE_RATE_HZ
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from dualtalk_ros.bridge import messages

AUDIO_KINDS = ("self_audio", "partner_audio")
RAW_KINDS = ("self_audio_raw", "partner_audio_raw")
TURN_S = 4.0  # the voices take turns: each path (speech, silence) of both inputs is exercised
RIG_SEGMENT_S = 10.0  # the partner face alternates ARKit and FLAME every this long
GAPS_PER_S = 0.2  # per voice: how often its chunks are held back, then flushed
BURSTS_PER_S = 0.3  # how often 10 copies of one message arrive at once
BURST_COPIES = 10
HUGE_BYTES = 3 * 1024 * 1024  # "huge" stays a few MB: DDS must still deliver it
MANY_NAMES = 200_000
FAR_S = 3600.0
INSIDE_SKEW_S = 4.0  # inside the node's default max_clock_skew_s (5 s)


@dataclass
class Planned:
    """One message to publish now: the node input it enters, what it is, the message."""

    kind: str  # self_audio, partner_audio, partner_face, self_audio_raw, partner_audio_raw
    label: str  # "valid", "burst", or the bad kind's name in BAD_KINDS
    msg: Any


def stamp(t_s: float) -> Time:
    sec, nanosec = messages.s_to_sec_nanosec(t_s)
    return Time(sec=sec, nanosec=nanosec)


def chunk(data: bytes, t_s: float, rate_hz: int = SAMPLE_RATE_HZ, encoding: str = "S16LE",
          channels: int = 1) -> AudioChunk:
    msg = AudioChunk(sample_rate=rate_hz, channels=channels, encoding=encoding)
    msg.header.stamp, msg.header.frame_id = stamp(t_s), "fuzz"
    msg.data = data
    return msg


def face(names: list[str], values: Any, t_s: float, rig: str = "arkit52") -> FaceCoefficients:
    msg = FaceCoefficients(rig=rig, names=names)
    msg.values = [float(v) for v in values]
    msg.header.stamp, msg.header.frame_id = stamp(t_s), "fuzz"
    return msg


def voice_samples(first: int, n: int, partner: bool, rng: np.random.Generator) -> np.ndarray:
    """(n,) int16 from sample index `first` of a voice: a 150/210 Hz tone with noise at syllable
    rate, silent outside its turns (content does not matter to robustness, turns do)."""
    t = (first + np.arange(n)) / SAMPLE_RATE_HZ
    talking = ((t // TURN_S) % 2 == 0) != partner
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * talking
    voice = np.sin(2 * np.pi * (210.0 if partner else 150.0) * t) + 0.3 * rng.standard_normal(n)
    return np.round(0.2 * 32767 * envelope * voice).astype("<i2")


class Conversation:
    """The valid half: two continuous voices and a 25 fps partner face from `start_s` on."""

    def __init__(self, rng: np.random.Generator, start_s: float) -> None:
        self.rng, self.start_s = rng, start_s
        self.next_sample = {k: 0 for k in AUDIO_KINDS}  # first sample of each voice's next chunk
        self.next_len = {k: self._chunk_len() for k in AUDIO_KINDS}
        self.held_until = {k: 0.0 for k in AUDIO_KINDS}
        self.next_face = 0
        self.gaps = self.holes = 0
        self.pauses: list[tuple[float, str]] = []  # (when, what) for the report's worst gaps
        self.arkit, self.flame = list(get_rig("arkit52").names), list(get_rig("flame56").names)

    def _chunk_len(self) -> int:
        return int(self.rng.integers(SAMPLE_RATE_HZ // 50, SAMPLE_RATE_HZ // 25 + 1))  # 20-40 ms

    def due(self, now_s: float, dt_s: float) -> list[Planned]:
        """Every chunk complete by `now_s` (unless its voice is held) and every face due."""
        out = []
        for kind in AUDIO_KINDS:
            if now_s < self.held_until[kind]:
                continue
            if self.rng.random() < GAPS_PER_S * dt_s:
                gap_s = self.rng.uniform(0.2, 0.8)
                if self.rng.random() < 0.5:  # a delivery stall: held back, then flushed
                    self.held_until[kind] = now_s + gap_s
                    self.pauses.append((now_s, f"{kind} held {gap_s:.2f} s"))
                else:  # a hole in the timeline (a dropout): those samples never come
                    self.next_sample[kind] += int(gap_s * SAMPLE_RATE_HZ)
                    self.holes += 1
                    self.pauses.append((now_s, f"{kind} hole {gap_s:.2f} s"))
                self.gaps += 1
                continue
            while self.start_s + (self.next_sample[kind] + self.next_len[kind]) \
                    / SAMPLE_RATE_HZ <= now_s:
                out.append(Planned(kind, "valid", self.audio(kind)))
        while self.start_s + self.next_face * FRAME_S <= now_s:
            out.append(Planned("partner_face", "valid", self.face(self.next_face)))
            self.next_face += 1
        return out

    def audio(self, kind: str) -> AudioChunk:
        first, n = self.next_sample[kind], self.next_len[kind]
        pcm = voice_samples(first, n, kind == "partner_audio", self.rng)
        self.next_sample[kind], self.next_len[kind] = first + n, self._chunk_len()
        return chunk(pcm.tobytes(), self.start_s + first / SAMPLE_RATE_HZ)

    def face(self, k: int) -> FaceCoefficients:
        t = self.start_s + k * FRAME_S
        if int(k * FRAME_S // RIG_SEGMENT_S) % 2 == 0:
            values = np.zeros(len(self.arkit))
            values[self.arkit.index("jawOpen")] = 0.2 * (1 + np.sin(k / 5.0))
            values[-3:] = 0.05 * np.sin(k / 20.0 + np.arange(3))  # head pitch, yaw, roll
            return face(self.arkit, values, t)
        values = 0.3 * np.sin(k / 7.0 + np.arange(len(self.flame)))
        return face(self.flame, values, t, rig="flame56")

    def valid_copy(self, kind: str, now_s: float) -> Any:
        """A fresh valid message stamped now (bursts, bad stamps): off the voices' timelines."""
        if kind == "partner_face":
            return face(self.arkit, np.full(len(self.arkit), 0.1), now_s)
        pcm = voice_samples(0, 480, kind == "partner_audio", self.rng)
        return chunk(pcm.tobytes(), now_s)


Builder = Callable[[np.random.Generator, float, Conversation], Any]


def _f32(values: Any) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def _pcm(rng: np.random.Generator, n: int = 480) -> bytes:
    return rng.integers(-3000, 3000, n).astype("<i2").tobytes()


def _audio_kinds() -> dict[str, Builder]:
    """Bad AudioChunks, by name (stamped now unless the stamp is the fault)."""
    return {
        "random_byte_count": lambda g, t, c: chunk(g.bytes(int(g.integers(1, 4000))), t),
        "random_bytes_f32": lambda g, t, c: chunk(g.bytes(int(g.integers(1, 4000))), t,
                                                  encoding="F32LE"),
        "unknown_encoding": lambda g, t, c: chunk(_pcm(g), t, encoding=str(g.choice(
            ["MP3", "S24LE", "", "s16le", "F64LE", "U8"]))),
        "empty_payload": lambda g, t, c: chunk(b"", t),
        "huge_payload": lambda g, t, c: chunk(bytes(HUGE_BYTES), t),
        "long_chunk_2_5s": lambda g, t, c: chunk(_pcm(g, 40_000), t),
        "nan_samples": lambda g, t, c: chunk(_f32(np.full(480, np.nan)), t, encoding="F32LE"),
        "inf_samples": lambda g, t, c: chunk(_f32([np.inf, -np.inf] * 240), t,
                                             encoding="F32LE"),
        "samples_1e30": lambda g, t, c: chunk(_f32(np.full(512, 1e30)), t, encoding="F32LE"),
        "samples_5": lambda g, t, c: chunk(_f32(np.full(480, 5.0)), t, encoding="F32LE"),
        "rate_1": lambda g, t, c: chunk(_pcm(g, 2), t, rate_hz=1),
        "rate_767999": lambda g, t, c: chunk(_pcm(g, 24_000), t, rate_hz=767_999),
        "rate_0": lambda g, t, c: chunk(_pcm(g), t, rate_hz=0),
        # -5 does not fit uint32: the same bits, as a C publisher's cast would send them
        "rate_minus_5": lambda g, t, c: chunk(_pcm(g), t, rate_hz=2**32 - 5),
        "rate_1e9": lambda g, t, c: chunk(_pcm(g), t, rate_hz=999_999_937),
        "rate_44100_valid": lambda g, t, c: chunk(_pcm(g, 1323), t, rate_hz=44_100),
        "channels_0": lambda g, t, c: chunk(_pcm(g), t, channels=0),
        "channels_200": lambda g, t, c: chunk(_pcm(g, 200 * 3), t, channels=200),
        **_stamp_kinds(lambda kind, g, t, c: c.valid_copy(kind, t), "audio"),
    }


def _face_kinds() -> dict[str, Builder]:
    """Bad FaceCoefficients, by name (the 200k-name message is built once and re-stamped)."""
    arkit = list(get_rig("arkit52").names)
    many = face([f"n{i}" for i in range(MANY_NAMES)], np.zeros(MANY_NAMES), 0.0)

    def restamped(msg: FaceCoefficients, t: float) -> FaceCoefficients:
        msg.header.stamp = stamp(t)
        return msg

    def filled(value: float) -> Builder:
        return lambda g, t, c: face(arkit, np.full(len(arkit), value), t)

    return {
        "face_count_mismatch": lambda g, t, c: face(arkit, np.zeros(len(arkit) - 1), t),
        "face_no_names": lambda g, t, c: face([], [], t),
        "face_200k_names": lambda g, t, c: restamped(many, t),
        "face_nan": filled(float("nan")),
        "face_inf": filled(float("inf")),
        "face_1e30": filled(1e30),
        "face_11": filled(11.0),
        "face_unknown_names_valid": lambda g, t, c: face(["foo", "bar"], [0.1, 0.2], t),
        **_stamp_kinds(lambda kind, g, t, c: c.valid_copy("partner_face", t), "face"),
    }


def _stamp_kinds(make: Callable[..., Any], prefix: str) -> dict[str, Builder]:
    """Valid payloads with wrong stamps: far past/future, zero, negative, 1-3 s backwards and
    +4 s (the last two inside the allowed skew: the node must take them)."""
    kind = "partner_face" if prefix == "face" else "self_audio"
    offsets: dict[str, Callable[[np.random.Generator, float], float]] = {
        "far_past": lambda g, t: t - FAR_S,
        "far_future": lambda g, t: t + FAR_S,
        "stamp_max": lambda g, t: float(2**31 - 1),
        "stamp_zero": lambda g, t: 0.0,
        "stamp_negative": lambda g, t: -5.0,
        "backwards_valid": lambda g, t: t - g.uniform(1.0, 3.0),
        "future_4s_valid": lambda g, t: t + INSIDE_SKEW_S,
    }

    def builder(offset: Callable[[np.random.Generator, float], float]) -> Builder:
        def build(g: np.random.Generator, t: float, c: Conversation) -> Any:
            msg = make(kind, g, t, c)
            msg.header.stamp = _signed_stamp(offset(g, t))
            return msg
        return build

    return {f"{prefix}_{name}": builder(offset) for name, offset in offsets.items()}


def _signed_stamp(t_s: float) -> Time:
    """A stamp that may be negative (sec is int32; nanosec stays in 0..1e9)."""
    sec = int(np.floor(t_s))
    return Time(sec=sec, nanosec=int(round((t_s - sec) * 1e9)) % 1_000_000_000)


def _raw_kinds() -> dict[str, Builder]:
    """audio_common_msgs inputs (when installed): AudioData and AudioDataStamped, read by the
    node as 16 kHz mono S16LE (its defaults); valid ones, bad byte counts, empty, huge, bad
    stamps."""
    from audio_common_msgs.msg import AudioData, AudioDataStamped

    def data(payload: bytes) -> AudioData:
        return AudioData(data=payload)

    def stamped(payload: bytes, t: float) -> AudioDataStamped:
        msg = AudioDataStamped(audio=data(payload))
        msg.header.stamp = _signed_stamp(t)
        return msg

    return {
        "raw_valid": lambda g, t, c: data(_pcm(g)),
        "raw_odd_bytes": lambda g, t, c: data(_pcm(g)[:-1]),
        "raw_empty": lambda g, t, c: data(b""),
        "raw_huge": lambda g, t, c: data(bytes(HUGE_BYTES)),
        "raw_stamped_valid": lambda g, t, c: stamped(_pcm(g), t),
        "raw_stamped_far_past": lambda g, t, c: stamped(_pcm(g), t - FAR_S),
        "raw_stamped_far_future": lambda g, t, c: stamped(_pcm(g), t + FAR_S),
    }


def audio_common_available() -> bool:
    try:
        import audio_common_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


HEAVY = {"huge_payload", "face_200k_names", "raw_huge", "long_chunk_2_5s", "rate_767999"}
HEAVY_WEIGHT = 0.05  # relative to 1 for the others: a few per minute, not a flood of MBs


class Hostile:
    """The hostile half: `bad_per_s` bad messages a second (Poisson), each of a kind drawn
    uniformly (heavy kinds rarer), on a random input of its type; and 10x bursts."""

    def __init__(self, rng: np.random.Generator, bad_per_s: float, raw: bool) -> None:
        self.rng, self.bad_per_s = rng, bad_per_s
        self.builders: list[tuple[str, str, Builder]] = []
        for label, build in _audio_kinds().items():
            self.builders += [(kind, label, build) for kind in AUDIO_KINDS]
        self.builders += [("partner_face", label, b) for label, b in _face_kinds().items()]
        if raw:
            for label, build in _raw_kinds().items():
                self.builders += [(kind, label, build) for kind in RAW_KINDS]
        weights = np.array([HEAVY_WEIGHT if label in HEAVY else 1.0
                            for _, label, _ in self.builders])
        self.p = weights / weights.sum()
        self.bursts = 0

    @property
    def labels(self) -> list[str]:
        return sorted({label for _, label, _ in self.builders})

    def due(self, now_s: float, dt_s: float, conversation: Conversation) -> list[Planned]:
        """The bad messages and bursts of the `dt_s` that ended at `now_s`."""
        out = []
        for i in self.rng.choice(len(self.builders), self.rng.poisson(self.bad_per_s * dt_s),
                                 p=self.p):
            kind, label, build = self.builders[i]
            out.append(Planned(kind, label, build(self.rng, now_s, conversation)))
        if self.rng.random() < BURSTS_PER_S * dt_s:
            kind = str(self.rng.choice(AUDIO_KINDS + ("partner_face",)))
            msg = conversation.valid_copy(kind, now_s)
            out += [Planned(kind, "burst", msg) for _ in range(BURST_COPIES)]
            self.bursts += 1
        return out
