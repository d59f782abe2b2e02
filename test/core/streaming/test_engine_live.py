"""Streaming engine with live input: the frame grid, gaps and stalls, bad and late input,
bounded memory, channel names (split from test_engine.py: whole-clip equality lives there)."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.model import DualTalkModel
from dualtalk_core.rigs import ARKIT_BLENDSHAPES
from dualtalk_core.streaming import DEFAULT_MODEL_DIR, StreamConfig, StreamingEngine, process_clip
from engine_models import raw_config, tiny_model  # test/core helper


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def tiny() -> DualTalkModel:
    return tiny_model()


def _live(engine: StreamingEngine, seconds: float, t_base: float, chunk_s: float = 0.04,
          partner: bool = True) -> list:
    rng = np.random.default_rng(0)
    frames, n = [], round(chunk_s * 16000)
    for i in range(round(seconds / chunk_s)):
        t = t_base + i * chunk_s
        engine.push_self_audio(0.1 * rng.standard_normal(n).astype(np.float32), 16000, t)
        if partner:
            engine.push_partner_audio(0.1 * rng.standard_normal(n).astype(np.float32), 16000, t)
        frames += engine.step(now=t + chunk_s)
    return frames


def test_exact_frame_grid_for_monotonic_40ms_stamps(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=2000))
    t_base = 1_700_000_000.0  # ROS-like epoch stamps
    frames = _live(engine, 3.0, t_base)
    # Live: every frame whose 200 ms lookahead is in, in hops of 3 frames.
    ready = (3.0 - 0.2) * 25 + 1
    assert ready - 3 < len(frames) <= ready
    frames += engine.flush()
    assert [f.index for f in frames] == list(range(75))
    np.testing.assert_allclose([f.t - t_base for f in frames], np.arange(75) / 25, atol=1e-6)
    stats = engine.stats
    assert stats.frames_emitted == 75 and stats.self_audio.gaps_filled == 0
    assert stats.partner_face.held_frames == 75  # no partner face was given: neutral
    quat = engine.rig.head_quaternion(frames[10].values)
    np.testing.assert_allclose(frames[10].head_quaternion, quat, atol=1e-6)


def test_face_keeps_going_when_input_stops_and_gaps_are_filled(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=2000))
    frames = _live(engine, 1.0, 50.0)
    for i in range(1, 51):  # 2 s without input; the timer keeps stepping
        frames += engine.step(now=51.0 + i * 0.04)
    # Frames up to now - timeout - lookahead keep coming, within one hop.
    expected = (3.0 - 0.15 - 0.2) * 25
    assert expected - 4 <= len(frames) <= expected + 1
    assert [f.index for f in frames] == list(range(len(frames)))
    stats = engine.stats
    assert stats.self_audio.gaps_filled == stats.partner_audio.gaps_filled == 1
    assert stats.self_audio.gap_fill_s == pytest.approx(1.85, abs=0.01)
    engine.push_self_audio(np.zeros(640, np.float32), 16000, 51.0)  # now too late
    assert engine.stats.self_audio.late_chunks == 1


def test_missing_partner_stream_does_not_stall(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=2000, input_timeout_ms=100))
    frames = _live(engine, 2.0, 0.0, partner=False)
    assert len(frames) >= (2.0 - 0.1 - 0.2) * 25 - 3
    assert engine.stats.partner_audio.gaps_filled == 1


def test_duplicates_out_of_order_late_counted(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=2000))
    chunk = np.full(1600, 0.1, np.float32)  # 0.1 s
    for t in (10.0, 10.1, 10.2):
        engine.push_self_audio(chunk, 16000, t)
        engine.push_partner_audio(chunk, 16000, t)
    engine.push_self_audio(chunk, 16000, 10.2)  # duplicate
    engine.push_self_audio(chunk, 16000, 10.1)  # out of order
    engine.push_partner_audio(np.full(2400, 0.1, np.float32), 16000, 10.25)  # half new
    names = ["jawOpen"]
    for t in (10.0, 10.04, 10.04, 10.0, 10.08):
        engine.push_partner_face(np.array([0.5]), names, t)
    s = engine.stats
    assert (s.self_audio.duplicate_chunks, s.self_audio.out_of_order_chunks) == (1, 1)
    assert s.partner_audio.trimmed_chunks == 1 and s.self_audio.chunks == 3
    assert (s.partner_face.duplicate_faces, s.partner_face.out_of_order_faces) == (1, 1)
    frames = engine.step(now=10.9)
    engine.push_partner_face(np.array([0.5]), names, 10.12)  # its frame is out already
    assert engine.stats.partner_face.late_faces == 1 and frames[-1].index >= 3


# ----------------------------------------------------------------- memory and stalls
def test_memory_bounded_over_ten_minutes(tiny):
    cfg = raw_config(window_ms=1400, hop_ms=1200, max_buffer_s=3)
    engine = StreamingEngine(tiny, cfg)
    buffers = [t._buf for t in engine._tracks.audio] + [engine._tracks.faces._values]
    sizes = [b.nbytes for b in buffers]
    n_frames = 0
    names = list(engine.rig.names)
    for i in range(1200):  # 10 minutes in 0.5 s chunks, pushed as fast as possible
        t = i * 0.5
        engine.push_self_audio(np.zeros(8000, np.float32), 16000, t)
        engine.push_partner_audio(np.zeros(8000, np.float32), 16000, t)
        engine.push_partner_face(np.zeros(55, np.float32), names, t)
        n_frames += len(engine.step(now=t + 0.5))
    assert [b.nbytes for b in buffers] == sizes and sizes[0] < 4e5
    assert all(t.head - t.base <= t.capacity for t in engine._tracks.audio)
    assert n_frames > 600 * 25 - 40
    s = engine.stats
    assert s.self_audio.overflow_chunks == s.frames_skipped == s.self_audio.gaps_filled == 0


def test_overflow_without_consumer_and_skip_after_stall(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=1000, hop_ms=120, max_buffer_s=2))
    for i in range(60):  # only one speaker, nobody passes `now`: nothing can be emitted
        engine.push_self_audio(np.zeros(1600, np.float32), 16000, i * 0.1)
        assert engine.step() == []
    assert engine.stats.self_audio.overflow_chunks > 0
    frames = engine.step(now=100.0)  # a long stall: jump, then carry on
    assert engine.stats.frames_skipped > 2000 and frames
    assert frames[-1].index - frames[0].index == len(frames) - 1


# ----------------------------------------------------------------- names and errors
def test_partner_face_names_mapped_and_reported(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=2000))
    engine.push_self_audio(np.zeros(640, np.float32), 16000, 0.0)
    mediapipe = ["_neutral"] + [n for n in ARKIT_BLENDSHAPES if n != "tongueOut"]
    engine.push_partner_face(np.full(len(mediapipe), 0.3), mediapipe, 0.0)
    s = engine.stats.partner_face
    assert s.unknown_names == () and s.missing_channels[0] == "tongueOut"
    a2f = ["JawOpen", "EyeBlink_L", "Smirk"]
    engine.push_partner_face(np.array([0.9, 0.1, 0.5]), a2f, 0.04)
    s = engine.stats.partner_face
    assert s.unknown_names == ("Smirk",) and len(s.missing_channels) == 53 and s.faces == 2
    window = engine._tracks.read_faces(0, 3)  # (3, 55): frame 2 holds frame 1's face
    jaw = engine.rig.names.index("jawOpen")
    assert window[0, jaw] == pytest.approx(0.3) and window[2, jaw] == pytest.approx(0.9)


def test_input_errors(tiny):
    engine = StreamingEngine(tiny, raw_config(window_ms=2000))
    with pytest.raises(ValueError, match="NaN"):
        engine.push_self_audio(np.array([0.0, np.nan], np.float32), 16000, 0.0)
    with pytest.raises(ValueError, match="empty"):
        engine.push_partner_audio(np.zeros(0, np.float32), 16000, 0.0)
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, channels\)"):
        engine.push_self_audio(np.zeros((2, 2, 2), np.float32), 16000, 0.0)
    with pytest.raises(ValueError, match="sample_rate"):
        engine.push_self_audio(np.zeros(10, np.float32), 0, 0.0)
    with pytest.raises(ValueError, match="t_first_sample"):
        engine.push_self_audio(np.zeros(10, np.float32), 16000, float("inf"))
    with pytest.raises(ValueError, match="shape"):
        engine.push_partner_face(np.zeros(3), ["jawOpen"], 0.0)
    with pytest.raises(ValueError, match="finite"):
        engine.push_partner_face(np.array([np.nan]), ["jawOpen"], 0.0)
    with pytest.raises(ValueError, match="one length"):
        process_clip(engine, np.zeros(100, np.float32), np.zeros(90, np.float32))
    with pytest.raises(ValueError, match="partner_motion"):
        process_clip(engine, np.zeros(640, np.float32), np.zeros(640, np.float32),
                     np.zeros((1, 3), np.float32))
    assert engine.stats.self_audio.chunks == 0 and engine.t0 is None


def test_config_errors_and_default_model_path(tiny):
    with pytest.raises(ValueError, match="multiple of 40"):
        StreamConfig(hop_ms=50)
    with pytest.raises(ValueError, match="window_ms"):
        StreamConfig(window_ms=0)
    assert StreamConfig(lookahead_ms=None).lookahead_ms == -1.0  # one spelling of "the model's"
    with pytest.raises(TypeError, match="DualTalkModel"):
        StreamingEngine("lite")  # type: ignore[arg-type]
    if not DEFAULT_MODEL_DIR.exists():
        with pytest.raises(FileNotFoundError, match="models/default"):
            StreamingEngine.load()
    with pytest.raises(FileNotFoundError, match="model_path"):
        StreamingEngine.load("/nonexistent/model")


def test_start_anchors_the_grid_so_frames_flow_without_any_input():
    engine = StreamingEngine.load("lite")
    assert engine.step(100.0) == []  # nothing anchors the grid yet
    engine.start(100.0)
    frames = engine.step(102.0)
    stamps = np.array([f.t for f in frames])
    assert len(frames) >= 40 and stamps[0] == 100.0
    np.testing.assert_allclose(np.diff(stamps), 0.04, atol=1e-9)
    stats = engine.stats.as_dict()
    assert stats["self_audio.gaps_filled"] >= 1 and stats["partner_audio.gaps_filled"] >= 1
    engine.start(50.0)  # already anchored: no effect
    assert engine.t0 == 100.0


def test_a_long_stream_without_any_partner_face_keeps_going():
    """Regression: the face timeline only made room when a face arrived, so a stream with no
    face tracker failed once it outgrew the buffer (~39 s with the default config)."""
    engine = StreamingEngine.load("lite", StreamConfig(max_buffer_s=2.0, window_ms=2000.0))
    chunk = np.zeros(512, np.float32)
    frames = 0
    for i in range(int(30 / 0.032)):
        t = 10.0 + i * 0.032
        engine.push_self_audio(chunk, 16000, t)
        engine.push_partner_audio(chunk, 16000, t)
        frames += len(engine.step(t + 0.032))
    assert frames >= 30 * 25 - 15
