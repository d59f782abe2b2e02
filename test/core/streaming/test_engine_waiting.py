"""When frames can go out: an absent input holds nothing back, speech published ahead of its
stamps makes no frame wait, and `next_batch_due_s` says when the next batch can be computed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dualtalk_core.model import DualTalkModel
from dualtalk_core.streaming import StreamConfig, StreamingEngine


@pytest.fixture(scope="module")
def lite() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu").eval()


def _voice(seconds: float) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(
        np.float32)


def test_an_absent_input_does_not_hold_frames_back(lite: DualTalkModel):
    """A TTS publishes only while the robot speaks: with the partner's microphone live and no
    own voice for absent_after_ms, frames wait for the microphone only, not input_timeout."""
    config = StreamConfig(hop_ms=40.0, input_timeout_ms=1000.0, absent_after_ms=300.0)
    engine = StreamingEngine(lite, config)
    chunk = 512
    voice = _voice(3.0)
    waits = []
    for i in range(0, len(voice) - chunk, chunk):
        t = 100.0 + i / 16000
        engine.push_partner_audio(voice[i:i + chunk], 16000, t)
        now = t + chunk / 16000 + 0.002  # the chunk has just arrived
        for frame in engine.step(now):
            waits.append(now - frame.t)
    late = np.array(waits[20:])  # once the own voice has been absent for 300 ms
    lookahead_s = engine.lookahead_ms / 1000
    assert len(waits) > 60 and late.max() < lookahead_s + 0.04 + 0.005, late.max()
    assert engine.stats.self_audio.gaps_filled >= 1


@pytest.mark.parametrize("hop_ms", [40.0, 80.0])
def test_speech_published_ahead_goes_out_when_its_batch_falls_due(lite: DualTalkModel,
                                                                  hop_ms: float):
    """A TTS that synthesises ahead: 3 s of own speech stamped from 100 s, all received at
    100 s, no partner microphone. Once the partner counts as absent, each batch can be
    computed exactly when its last needed sample is due: not a tick later, no
    input_timeout_ms, and nothing flagged as waited."""
    engine = StreamingEngine(lite, StreamConfig(hop_ms=hop_ms, absent_after_ms=300.0))
    engine.push_self_audio(_voice(3.0), 16000, 100.0, received_s=100.0)
    lookahead_s = engine.lookahead_ms / 1000
    assert engine.next_batch_due_s() == pytest.approx(
        100.0 + lookahead_s + (engine.batch_frames - 1) * 0.04, abs=1e-4)
    # the partner is late first (input_timeout_ms), then absent (300 ms without a chunk)
    assert engine.step(100.0 + lookahead_s + 0.35)
    emitted = 0
    while emitted < 30:
        due = engine.next_batch_due_s()
        assert engine.step(due - 0.001) == []  # a millisecond early: nothing
        frames = engine.step(due)
        assert len(frames) == engine.batch_frames and not any(f.waited for f in frames)
        assert frames[-1].t == pytest.approx(due - lookahead_s, abs=1e-4)
        emitted += len(frames)
    assert engine.stats.partner_audio.gaps_filled == 1  # the absent microphone: silence


@pytest.mark.parametrize("cap_ms", [None, 30.0])
def test_a_wait_cap_sends_frames_of_a_stopped_voice_at_their_deadline(
        lite: DualTalkModel, cap_ms: float | None):
    """The robot's voice stops at 1.5 s (its TTS publishes nothing more) while the partner's
    microphone goes on: frames needing audio past the stop wait input_timeout_ms for it, or
    only the cap a live caller sets from its frames' deadline, and are flagged as waited."""
    engine = StreamingEngine(lite, StreamConfig(hop_ms=40.0, input_timeout_ms=150.0))
    engine.set_wait_cap(cap_ms)
    assert engine.wait_ms == (150.0 if cap_ms is None else cap_ms)
    voice, chunk, lookahead_s = _voice(3.0), 320, engine.lookahead_ms / 1000
    waits = {}
    for i in range(0, len(voice) - chunk, chunk):
        t = 100.0 + i / 16000
        now = t + chunk / 16000
        engine.push_partner_audio(voice[i:i + chunk], 16000, t, received_s=now)
        if t < 101.5:
            engine.push_self_audio(voice[i:i + chunk], 16000, t, received_s=now)
        for frame in engine.step(now):
            waits[frame.index] = (now - frame.t - lookahead_s, frame.waited)
    before = [w for k, (w, waited) in waits.items() if k * 0.04 + lookahead_s <= 1.5]
    after = [(w, waited) for k, (w, waited) in waits.items()
             if 1.5 < k * 0.04 + lookahead_s < 1.5 + 0.3]  # before the voice counts as absent
    assert max(before) <= 0.02 + 1e-6  # one chunk
    assert engine.arrival_lateness_ms() == pytest.approx(20.0, abs=1e-3)  # each chunk's 20 ms
    wait_s = engine.wait_ms / 1000
    assert all(waited and wait_s <= w <= wait_s + 0.02 + 1e-6 for w, waited in after), after


def test_a_wait_cap_must_be_a_finite_non_negative_time(lite: DualTalkModel):
    engine = StreamingEngine(lite, StreamConfig())
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="wait cap"):
            engine.set_wait_cap(bad)
    engine.set_wait_cap(500.0)  # above input_timeout_ms: the timeout still bounds the wait
    assert engine.wait_ms == engine.config.input_timeout_ms
