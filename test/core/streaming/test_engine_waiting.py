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
