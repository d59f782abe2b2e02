"""The libespeak-ng binding: audio and per-phoneme start times from one synthesis."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.synth.espeak import PAUSE, Voice, synthesize


def test_audio_rate_and_monotonic_phoneme_times_inside_the_audio():
    speech = synthesize("Have you ever been to the market? I bought a map.",
                        Voice("en-us", "f2", pitch=60, speed_wpm=170))
    assert speech.sample_rate == 22050
    assert speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert 1.5 < speech.duration_s < 6.0
    assert np.abs(speech.audio).max() <= 1.0 and np.abs(speech.audio).max() > 0.05
    starts = speech.phoneme_starts_s
    assert len(starts) == len(speech.phonemes) > 20
    assert np.all(np.diff(starts) >= 0)
    assert starts[0] >= 0 and starts[-1] <= speech.duration_s
    spoken = set(speech.phonemes)
    assert {"m", "p", "b"} <= spoken and PAUSE in spoken
    assert np.all(np.diff(speech.word_starts_s) >= 0)


def test_voices_differ_and_repeats_differ_by_a_few_samples_at_most():
    # espeak-ng carries waveform state across calls: repeats agree up to a few samples
    # (the corpus builds each clip in a fresh process to be byte-reproducible).
    a = synthesize("Right, okay.", Voice("en", "m3", pitch=40))
    b = synthesize("Right, okay.", Voice("en", "m3", pitch=40))
    c = synthesize("Right, okay.", Voice("en", "f3", pitch=70))
    assert a.phonemes == b.phonemes and abs(len(a.audio) - len(b.audio)) < 0.05 * len(a.audio)
    assert len(a.audio) != len(c.audio) or not np.array_equal(a.audio, c.audio)


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match="non-empty text"):
        synthesize("  ", Voice())
    with pytest.raises(ValueError, match="no voice"):
        synthesize("hello", Voice(language="xx-nowhere"))
