"""The engine's input contract: absurd but well-formed input is refused or clipped and counted,
a stamp glitch costs only itself, and no input (or model fault) reaches the output as NaN."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dualtalk_core import rigs
from dualtalk_core.audio import pcm
from dualtalk_core.model import DualTalkModel
from dualtalk_core.streaming import StreamConfig, StreamingEngine

CHUNK = 512  # 32 ms at 16 kHz


@pytest.fixture(scope="module")
def lite() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu").eval()


def _voice(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)


def _converse(engine: StreamingEngine, seconds: float, glitch: dict | None = None,
              t0: float = 50.0) -> list:
    """Both voices in 32 ms chunks and a face a frame, stepping with `now` at each arrival;
    `glitch` = {chunk index: (kind, stamp offset s)} adds one mis-stamped message there."""
    own, other = _voice(seconds, 1), _voice(seconds, 2)
    names = list(engine.rig.names)
    frames = []
    for n, i in enumerate(range(0, len(own) - CHUNK, CHUNK)):
        t = t0 + i / 16000
        if glitch and n in glitch:
            kind, offset = glitch[n]
            if kind == "audio":
                engine.push_partner_audio(other[i:i + CHUNK], 16000, t + offset)
            else:
                engine.push_partner_face(engine.rig.neutral_array(), names, t + offset)
        engine.push_self_audio(own[i:i + CHUNK], 16000, t)
        engine.push_partner_audio(other[i:i + CHUNK], 16000, t)
        engine.push_partner_face(np.full(len(names), 0.2, np.float32), names, t)
        frames.extend(engine.step(t + CHUNK / 16000 + 0.001))
    return frames


def test_absurd_samples_and_rates_are_refused_and_the_stream_goes_on(lite):
    engine = StreamingEngine(lite, StreamConfig(hop_ms=40.0))
    with pytest.raises(ValueError, match="not full-scale"):
        engine.push_partner_audio(np.full(512, 1e30, np.float32), 16000, 10.0)
    for rate in (1, 7999, 767999, 10**9):
        with pytest.raises(ValueError, match="sample_rate"):
            engine.push_partner_audio(np.zeros(512, np.float32), rate, 10.0)
    assert engine.t0 is None  # nothing refused anchored the stream
    frames = _converse(engine, 2.0)
    assert len(frames) >= 40 and all(np.isfinite(f.values).all() for f in frames)


def test_hot_float_audio_is_clipped_and_counted(lite):
    engine = StreamingEngine(lite, StreamConfig(hop_ms=40.0))
    engine.push_self_audio(np.full(512, 1.5, np.float32), 16000, 1.0)
    engine.push_self_audio(np.full(512, 0.5, np.float32), 16000, 1.032)
    assert engine.stats.self_audio.clipped_chunks == 1
    assert engine.stats.self_audio.chunks == 2


def test_standard_rates_pass_and_odd_ones_do_not():
    for rate in (8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000, 768000):
        assert pcm.check_rate(rate) == rate
    for rate in (7999, 16001, 44101, 767999):
        with pytest.raises(ValueError):
            pcm.check_rate(rate)


def test_absurd_faces_are_refused_and_unknown_names_stay_bounded(lite, caplog):
    engine = StreamingEngine(lite)
    names = list(engine.rig.names)
    for value in (5e37, np.inf, np.nan, -11.0):
        row = np.zeros(len(names), np.float32)
        row[3] = value
        with pytest.raises(ValueError, match="finite and within"):
            engine.push_partner_face(row, names, 1.0)
    with pytest.raises(ValueError, match="channels"):
        too_many = [f"n{i}" for i in range(rigs.MAX_CHANNELS + 1)]
        engine.push_partner_face(np.zeros(len(too_many)), too_many, 1.0)
    engine.push_self_audio(np.zeros(512, np.float32), 16000, 1.0)
    with caplog.at_level(logging.WARNING, logger="dualtalk_core"):
        for j in range(300):  # 300 faces, each with new unknown names
            odd = [f"odd{j}_{i}" for i in range(3)]
            engine.push_partner_face(np.zeros(len(names) + 3), names + odd, 1.0 + 0.04 * j)
    stats = engine.stats.partner_face
    assert len(stats.unknown_names) == 64 and stats.unknown_names_truncated
    assert stats.faces == 300 and len(caplog.records) == 1  # warned once


@pytest.mark.parametrize("offset_s", [0.26, 4.0])
def test_a_glitch_just_past_the_jump_is_disowned_by_the_next_chunk(offset_s):
    """A chunk whose stamp is corrupted is held; the next chunk of the old timeline starts
    before it and disowns it, however small the jump (a rule on distance alone would take a
    0.26 s glitch as confirmed and lose 0.26 s of good audio)."""
    from dualtalk_core.streaming.stamp_gate import StampGate

    gate: StampGate[str] = StampGate(0.25)
    assert gate.admit("a", 1.0, 1.032, expected_s=1.0) == ["a"]
    assert gate.admit("glitch", 1.032 + offset_s, 1.064 + offset_s, expected_s=1.032) == []
    # the chunk after the corrupted one (its own time lost with its stamp)
    assert gate.admit("c", 1.064, 1.096, expected_s=1.032) == ["c"] and gate.outliers == 1
    assert gate.admit("jump", 2.0, 2.032, expected_s=1.064) == []
    assert gate.admit("jump again", 2.032, 2.064, expected_s=1.064) == ["jump", "jump again"]


@pytest.mark.parametrize("kind", ["audio", "face"])
def test_a_stamp_glitch_costs_only_itself(lite, kind):
    """One message stamped +4 s (inside the default 5 s clock skew) is held, then dropped when
    the stream goes on without it: every good message around it counts, the frames are those
    of the same conversation without the glitch."""
    clean = _converse(StreamingEngine(lite), 2.0)
    engine = StreamingEngine(lite)
    glitched = _converse(engine, 2.0, glitch={20: (kind, 4.0)})
    s = engine.stats
    if kind == "audio":
        assert s.partner_audio.outlier_chunks == 1 and s.partner_audio.out_of_order_chunks == 0
        assert s.partner_audio.chunks == s.self_audio.chunks
    else:
        assert s.partner_face.outlier_faces == 1 and s.partner_face.out_of_order_faces == 0
    assert len(glitched) == len(clean) >= 40
    np.testing.assert_allclose(np.stack([f.values for f in glitched]),
                               np.stack([f.values for f in clean]), atol=1e-6)


def test_a_real_pause_is_filed_as_soon_as_the_clock_reaches_it(lite):
    """Input resuming after a pause jumps as a glitch does; stamped at its arrival, the step
    that receives it files it (no waiting for a second chunk)."""
    engine = StreamingEngine(lite, StreamConfig(hop_ms=40.0))
    voice = _voice(0.5)
    engine.push_self_audio(voice, 16000, 10.0)
    engine.push_partner_audio(voice, 16000, 10.0)
    engine.step(10.5)
    engine.push_partner_audio(voice[:512], 16000, 11.5)  # after a 1 s pause
    assert engine.stats.partner_audio.held_chunks == 1
    engine.step(11.533)
    s = engine.stats.partner_audio
    assert (s.held_chunks, s.chunks, s.outlier_chunks) == (0, 2, 0)


def test_every_pushed_message_is_counted_in_exactly_one_outcome(lite):
    engine = StreamingEngine(lite, StreamConfig(hop_ms=40.0))
    frames = _converse(engine, 2.0, glitch={5: ("audio", 4.0), 9: ("audio", -1.0),
                                            12: ("face", 3.0), 30: ("face", -2.0)})
    s = engine.stats
    n = len(range(0, 32000 - CHUNK, CHUNK))
    assert frames
    assert s.self_audio.outcomes() == n and s.partner_audio.outcomes() == n + 2
    assert s.partner_face.outcomes() == n + 2
    assert s.partner_audio.out_of_order_chunks == 1 and s.partner_face.out_of_order_faces == 1


def test_a_model_gone_bad_never_reaches_the_output(lite):
    """NaN weights (loading refuses them; a fault in memory does not ask): every frame is
    guarded before the smoother, counted, and the face holds its last good frame."""
    model = DualTalkModel.from_preset("lite", device="cpu").eval()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    engine = StreamingEngine(model, StreamConfig(hop_ms=40.0))
    frames = _converse(engine, 1.0)
    assert frames and all(np.isfinite(f.values).all() for f in frames)
    assert all(np.isfinite(f.head_quaternion).all() for f in frames)
    assert engine.stats.nan_guarded == len(frames)


def test_a_stream_without_any_partner_face_outlives_its_buffers(lite):
    """No face tracker at all: the face timeline must make room without faces arriving (it
    once failed past the buffer's length, ~39 s at the defaults)."""
    engine = StreamingEngine(lite, StreamConfig(max_buffer_s=2.0))
    voice = _voice(12.0)
    frames = []
    for i in range(0, len(voice), CHUNK):
        t = 5.0 + i / 16000
        engine.push_self_audio(voice[i:i + CHUNK], 16000, t)
        engine.push_partner_audio(voice[i:i + CHUNK], 16000, t)
        frames.extend(engine.step(t + CHUNK / 16000))
    frames.extend(engine.flush())
    assert [f.index for f in frames] == list(range(300))
    assert engine.stats.partner_face.held_frames == 300
