"""Echo cancellation of the robot's own voice (`audio.echo_cancellation`) on real synthetic speech
in a simulated room (`audio.room_echo`): echo removed, partner kept, samples aligned, no NaN."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.audio.echo_cancellation import (AEC3_DELAY_SAMPLES, FRAME_SAMPLES,
                                                   LATENCY_SAMPLES, EchoCanceller, cancel_echo)
from dualtalk_core.audio.room_echo import (RoomEcho, active_frames, erle_db, simulate_echo,
                                           speech_distortion_db)
from dualtalk_core.synth.corpus import build_clip

SECONDS = 12  # three turns each, double talk at two turn changes
HARSH_ROOM = RoomEcho(gain_db=0.0, nonlinearity=1.0, rt60_ms=500.0, noise_dbfs=-60.0)


@pytest.fixture(scope="module")
def voices() -> tuple[np.ndarray, np.ndarray]:
    """(own, partner) (N,) each: a test conversation of the synthetic corpus (espeak-ng)."""
    clip = build_clip("test", 0, seed=0)
    own, partner = clip.audio[:, :SECONDS * 16000]
    return own, partner


@pytest.mark.parametrize("room, bound_db", [
    (RoomEcho(), 30.0),  # measured 40.9 dB
    (HARSH_ROOM, 20.0),  # a loud, clipping loudspeaker in a noisy, reverberant room: 30.0
    (RoomEcho(delay_ms=80.0, rt60_ms=600.0, gain_db=-12.0, seed=3), 18.0),  # 26.9
])
def test_the_robots_own_voice_is_removed_from_the_microphone(voices, room, bound_db):
    own, _ = voices
    echo = simulate_echo(own, room)
    assert erle_db(echo, cancel_echo(echo, own)) >= bound_db


def test_the_partner_passes_nearly_unchanged_and_is_damped_only_in_double_talk(voices):
    own, partner = voices
    echo = simulate_echo(own, RoomEcho())
    # No echo: AEC3's ~80 Hz high-pass only (measured 0.53 dB mean band error, -0.37 dB).
    err, gain = speech_distortion_db(partner, cancel_echo(partner, np.zeros_like(own)))
    assert err < 1.0 and abs(gain) < 1.0
    out = cancel_echo(partner + echo, own)
    alone = ~active_frames(echo)  # the partner speaks, the robot's echo has died away
    err, gain = speech_distortion_db(partner, out, mask=alone)
    assert err < 1.0 and abs(gain) < 1.0  # measured 0.62 dB, -0.35 dB
    # Both speak: AEC3's suppressor damps the partner (measured -11.2 dB on average), the
    # price of its echo removal (docs/echo_cancellation.md); it must not erase them.
    overlap = active_frames(partner) & active_frames(echo)
    _, gain = speech_distortion_db(partner, out, mask=overlap)
    assert -16.0 < gain < -6.0


def test_any_block_lengths_give_the_whole_clip_result_at_a_fixed_latency(voices):
    own, partner = voices
    own, mic = own[:3 * 16000], partner[:3 * 16000] + simulate_echo(own[:3 * 16000], RoomEcho())
    whole = cancel_echo(mic, own)
    assert whole.shape == mic.shape and whole.dtype == np.float32
    canceller, outs, i = EchoCanceller(), [], 0
    for n in np.random.default_rng(1).integers(0, 700, 400):
        out = canceller.process(mic[i:i + n], own[i:i + n])
        assert len(out) == len(mic[i:i + n])
        outs.append(out)
        i += n
    outs.append(canceller.process(mic[i:], own[i:]))
    tail = canceller.flush()
    assert len(tail) == LATENCY_SAMPLES
    streamed = np.concatenate([*outs, tail])
    assert np.array_equal(streamed[LATENCY_SAMPLES:], whole)
    assert not streamed[:LATENCY_SAMPLES].any()


@pytest.mark.parametrize("at", [3000, 3059, 3100])  # anywhere within a 10 ms frame
def test_a_click_comes_out_when_each_path_says(at):
    click, silence = np.zeros(8000, np.float32), np.zeros(8000, np.float32)
    click[at] = 0.5
    assert np.argmax(np.abs(cancel_echo(click, silence))) == at  # compensated: aligned
    canceller = EchoCanceller()
    assert np.argmax(np.abs(canceller.process(click, silence))) == at + LATENCY_SAMPLES
    canceller.reset()
    out = canceller.process_frames(click, silence)
    assert np.argmax(np.abs(out)) == at + AEC3_DELAY_SAMPLES


def test_silence_and_clipping_never_give_nan():
    rng = np.random.default_rng(0)
    square = np.sign(np.sin(np.arange(16000) / 5.0)).astype(np.float32)
    hot = (rng.standard_normal(16000) * 3.0).astype(np.float32)  # mostly beyond full scale
    zeros = np.zeros(16000, np.float32)
    canceller = EchoCanceller()
    for mic, ref in ((zeros, zeros), (square, square), (hot, hot), (zeros, hot), (hot, zeros)):
        for out in (canceller.process(mic, ref), cancel_echo(mic, ref)):
            assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert canceller.clipped_samples == 4 * np.count_nonzero(np.abs(hot) > 1.0)
    # Nothing at the microphone: AEC3's comfort noise at most (measured -71 dBFS RMS).
    assert np.sqrt(np.mean(cancel_echo(zeros, hot) ** 2)) < 1e-3


def test_reset_starts_a_new_stream(voices):
    own, partner = voices
    own, mic = own[:32000], partner[:32000] + simulate_echo(own[:32000], RoomEcho())
    canceller = EchoCanceller()
    first = canceller.process(mic, own)
    canceller.process(mic[:1234], own[:1234])  # state and a partial frame, then forgotten
    canceller.reset()
    assert np.array_equal(canceller.process(mic, own), first)
    canceller.reset()
    canceller.process_frames(mic[:1600], own[:1600])  # a reset also allows the other path


@pytest.mark.parametrize("mic, ref, match", [
    (np.zeros(160, np.int16), np.zeros(160, np.float32), "mic must be a float numpy array"),
    ([0.0] * 160, np.zeros(160, np.float32), "mic must be a float numpy array"),
    (np.zeros(160, np.float32), np.zeros((160, 2), np.float32), r"reference must be one channel"),
    (np.full(160, np.nan, np.float32), np.zeros(160, np.float32), "mic has NaN"),
    (np.zeros(160, np.float32), np.zeros(161, np.float32), "time-aligned blocks of one length"),
])
def test_bad_arguments_say_what_was_expected(mic, ref, match):
    with pytest.raises(ValueError, match=match):
        EchoCanceller().process(mic, ref)
    with pytest.raises(ValueError, match=match):
        cancel_echo(mic, ref)


def test_the_two_streaming_paths_are_not_mixed():
    block = np.zeros(FRAME_SAMPLES + 1, np.float32)
    canceller = EchoCanceller()
    with pytest.raises(ValueError, match="whole 160-sample frames"):
        canceller.process_frames(block, block)
    canceller.process(block, block)
    with pytest.raises(ValueError, match=r"started with process\(\); call reset\(\)"):
        canceller.process_frames(block[:FRAME_SAMPLES], block[:FRAME_SAMPLES])
    canceller.reset()
    canceller.process_frames(block[:FRAME_SAMPLES], block[:FRAME_SAMPLES])
    with pytest.raises(ValueError, match=r"flush\(\) ends process\(\) streams"):
        canceller.flush()
