"""libespeak-ng through ctypes: text + voice -> float audio and per-phoneme start times.

The command-line `espeak-ng` cannot report phoneme timings without MBROLA, but the library
emits a PHONEME event (type 7) with the audio position of every phoneme it speaks, so one
synchronous run gives both the waveform and its phoneme track (facts from `speak_lib.h`).

The library keeps global state (one voice, one callback), so this module keeps one process-wide
engine behind a lock; worker processes each initialise their own copy. That state also leaks
from one call into the next (the same text can come out a few samples longer after another
voice spoke; re-initialising the library in-process hangs), so output is reproducible for a
reproducible sequence of calls in a fresh process: `corpus` builds each clip in one.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from dataclasses import dataclass

import numpy as np

LOG = logging.getLogger(__name__)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_OPTION_PHONEME_EVENTS = 0x1
_OPTION_PHONEME_IPA = 0x2
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_CHARS_UTF8 = 1
_PHONEME_INPUT = 0x100        # espeakPHONEMES: [[...]] in the text is phoneme mnemonics
PAUSE = "_"
_POS_CHARACTER = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """`espeak_EVENT` of speak_lib.h (64-bit layout)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """One espeak-ng speaker: language voice + variant, pitch (0-100), range and speed (wpm)."""

    language: str = "en-us"
    variant: str = "m1"
    pitch: int = 50
    pitch_range: int = 50
    speed_wpm: int = 165

    @property
    def name(self) -> str:
        """The voice+variant key (`en-gb+f3`) that defines speaker identity across splits."""
        return f"{self.language}+{self.variant}"

    @property
    def identity(self) -> str:
        """The person (resting face) speaking: an espeak-ng voice is its own person."""
        return self.name


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: `audio (N,)` float32 in +-1 at `sample_rate`; phonemes (IPA, `_` =
    pause) with start times in seconds (sorted; a phoneme lasts until the next starts), and
    word start times."""

    audio: np.ndarray
    sample_rate: int
    phonemes: tuple[str, ...]
    phoneme_starts_s: np.ndarray
    word_starts_s: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


class _Engine:
    """The initialised library plus the buffers its callback fills during one synthesis."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise RuntimeError(
                f"cannot load {path}: install the Debian package libespeak-ng1") from exc
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                               ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]
        options = _OPTION_PHONEME_EVENTS | _OPTION_PHONEME_IPA
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak_Initialize failed: is espeak-ng-data installed?")
        self._callback = _CALLBACK(self._on_synth)  # kept alive: the library holds a pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, str]] = []
        self.lock = threading.Lock()

    def _on_synth(self, wav: ctypes.Array, n: int, events: ctypes.Array) -> int:
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0")[0].decode("utf-8", "replace")
                # An empty name is a pause; keeping it marks where the previous phoneme ends.
                self.events.append((ev.type, ev.sample, name.strip() or PAUSE))
            elif ev.type == _EVENT_WORD:
                self.events.append((ev.type, ev.sample, ""))
            i += 1
        return 0  # 0 = continue synthesis

    def set_voice(self, voice: Voice) -> None:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}; see `espeak-ng --voices`")
        for param, value in ((_PARAM_RATE, voice.speed_wpm), (_PARAM_PITCH, voice.pitch),
                             (_PARAM_RANGE, voice.pitch_range), (_PARAM_VOLUME, 100)):
            self.lib.espeak_SetParameter(param, int(value), 0)


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


def synthesize(text: str, voice: Voice) -> Speech:
    """Speak `text` with `voice`; reproducible for the same sequence of calls since process start
    (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected non-empty text, got {text!r}")
    eng = _engine()
    with eng.lock:
        eng.chunks, eng.events = [], []
        eng.set_voice(voice)
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        rc = eng.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0,
                                  _CHARS_UTF8 | _PHONEME_INPUT, None, None)
        eng.lib.espeak_Synchronize()
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed with code {rc} for {text!r}")
        chunks, events = eng.chunks, eng.events
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    return _to_speech(audio, eng.sample_rate, events)


def _to_speech(audio: np.ndarray, sr: int, events: list[tuple[int, int, str]]) -> Speech:
    """Events -> start times (s), sorted and clipped to the audio."""
    dur = len(audio) / sr
    phon = [(s / sr, n) for t, s, n in events if t == _EVENT_PHONEME]
    words = [s / sr for t, s, _ in events if t == _EVENT_WORD]
    phon.sort(key=lambda p: p[0])  # stable sort keeps the spoken order of equal times
    starts = np.clip(np.array([p[0] for p in phon], np.float64), 0.0, dur)
    return Speech(audio, sr, tuple(p[1] for p in phon), starts,
                  np.clip(np.sort(np.array(words, np.float64)), 0.0, dur))
