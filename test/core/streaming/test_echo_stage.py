"""Echo cancellation in the engine (`stream.echo_cancellation`): the partner's audio is cleaned
of the robot's voice once per grid sample, in order, so streaming equals the whole clip cleaned
by `cancel_echo`, whatever the chunking; absent own voice, reset and stalls are handled."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core import rigs
from dualtalk_core.audio.echo_cancellation import LATENCY_SAMPLES, cancel_echo
from dualtalk_core.audio.room_echo import RoomEcho, simulate_echo
from dualtalk_core.model import DualTalkModel
from dualtalk_core.streaming import DEFAULT_MODEL_DIR, StreamConfig, StreamingEngine, process_clip
from dualtalk_core.streaming.echo_stage import EchoStage
from dualtalk_core.streaming.input_tracks import InputTracks
from dualtalk_core.synth.corpus import build_clip

RIG = rigs.get_rig("arkit52")
SECONDS = 8
ON = StreamConfig(echo_cancellation=True)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(own, mic, face): a corpus test conversation (espeak-ng voices) whose partner
    microphone hears the robot's voice in a simulated room, and the partner's (T, 55) face.
    The face matters: the network reads the partner's audio only as attention queries over the
    partner's motion, so with a constant face no partner audio changes any frame."""
    conversation = build_clip("test", 0, seed=0)
    own, partner = conversation.audio[:, :SECONDS * 16000]
    face = conversation.coeffs[1, :SECONDS * 25]
    return own, partner + simulate_echo(own, RoomEcho()), face


@pytest.fixture(scope="module")
def voices(clip) -> tuple[np.ndarray, np.ndarray]:
    return clip[0], clip[1]


@pytest.fixture(scope="module")
def shipped() -> DualTalkModel:
    return DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu")


@pytest.fixture(scope="module")
def spanned(shipped) -> DualTalkModel:
    """The shipped weights with a bounded attention span: the engine steps it frame by frame,
    exactly as whole-clip inference, so any schedule gives the same frames; trained weights
    make the partner's audio matter (random ones barely react to it)."""
    model = DualTalkModel.from_preset("lite", device="cpu", attention_span_frames=40)
    model.load_state_dict(shipped.state_dict())
    return model.eval()


def _push_in_chunks(tracks: InputTracks, stage: EchoStage, own: np.ndarray, mic: np.ndarray,
                    seed: int) -> dict[int, float]:
    """Both voices in independent random chunks; after each, the stage advances. Returns
    {grid sample: value} of the partner samples as first released to the model."""
    rng = np.random.default_rng(seed)
    cuts = [np.cumsum(rng.integers(1, 900, len(own) // 100)) for _ in range(2)]
    pos, seen, released = [0, 0], {}, 0
    while min(pos) < len(own):
        which = int(rng.integers(2)) if max(pos) < len(own) else int(np.argmin(pos))
        end = min(len(own), int(cuts[which][np.searchsorted(cuts[which], pos[which],
                                                            side="right")]))
        voice = (own, mic)[which]
        tracks.push_audio(which, voice[pos[which]:end], 16000, 50.0 + pos[which] / 16000)
        pos[which] = end
        available = stage.advance(tracks, final=False)
        assert released <= available <= tracks.available()
        assert available >= tracks.available() - LATENCY_SAMPLES
        seen.update(zip(range(released, available),
                        tracks.read_audio(released, available)[1].tolist()))
        released = available
    return seen


@pytest.mark.parametrize("seed", [0, 1])
def test_the_partner_track_is_cleaned_once_in_order_whatever_the_chunking(voices, seed):
    own, mic = voices
    tracks = InputTracks(RIG, capacity_samples=16000 * 20, tolerance_ms=10.0)
    stage = EchoStage(True)
    seen = _push_in_chunks(tracks, stage, own, mic, seed)
    tracks.end(0)
    assert stage.advance(tracks, final=True) == tracks.available() == len(own)
    cleaned = tracks.read_audio(0, len(own))[1]
    expected = cancel_echo(mic, own)
    np.testing.assert_array_equal(cleaned, expected)
    released = np.array(list(seen.values()), np.float32)
    np.testing.assert_array_equal(released, expected[:len(released)])  # final when read


@pytest.mark.parametrize("chunk_ms", [80.0, 32.0, 17.3])
def test_streaming_with_echo_cancellation_equals_the_cleaned_whole_clip(clip, spanned, chunk_ms):
    own, mic, face = clip
    cleaned = cancel_echo(mic, own)
    on = process_clip(StreamingEngine(spanned, ON), own, mic, face, chunk_ms=chunk_ms)
    off = process_clip(spanned, own, cleaned, face, config=StreamConfig(), chunk_ms=chunk_ms)
    np.testing.assert_allclose(on, off, atol=1e-6, rtol=0)
    assert np.abs(on - process_clip(spanned, own, mic, face, chunk_ms=chunk_ms)).max() > 1e-3


def test_the_shipped_windowed_model_streams_cleaned_audio_too(clip, shipped):
    """The default model re-runs windows: with one covering the clip and no seam blending,
    frames do not depend on how runs were batched, so the two engines must agree."""
    own, mic, face = clip
    config = dict(window_ms=SECONDS * 1000.0 + 1000.0, crossfade_ms=0.0)
    on = process_clip(shipped, own, mic, face,
                      config=StreamConfig(echo_cancellation=True, **config))
    off = process_clip(shipped, own, cancel_echo(mic, own), face, config=StreamConfig(**config))
    np.testing.assert_allclose(on, off, atol=1e-5, rtol=0)
    heard = process_clip(shipped, own, mic, face, config=StreamConfig(**config))
    assert np.abs(on - heard).max() > 1e-3


def test_an_absent_own_voice_is_a_silent_reference(clip, spanned):
    """The TTS is silent: only the microphone (and the face tracker) stream, live; the own
    voice counts as absent and is silence, so the partner is cleaned against silence."""
    _, mic, face = clip
    engine = StreamingEngine(spanned, StreamConfig(echo_cancellation=True,
                                                   absent_after_ms=300.0))
    frames, chunk = [], 640
    for j, i in enumerate(range(0, len(mic), chunk)):
        t = 10.0 + i / 16000
        engine.push_partner_face(face[j], RIG.names, t)
        engine.push_partner_audio(mic[i:i + chunk], 16000, t)
        frames += engine.step(t + chunk / 16000 + 0.002)
    frames += engine.flush()
    assert [f.index for f in frames] == list(range(len(face)))
    silence = np.zeros_like(mic)
    expected = process_clip(spanned, silence, cancel_echo(mic, silence), face)
    np.testing.assert_allclose(np.stack([f.values for f in frames]), expected, atol=1e-6)
    assert np.abs(expected - process_clip(spanned, silence, mic, face)).max() > 1e-3


def test_reset_and_a_restart_start_the_canceller_afresh(voices, spanned):
    own, mic = voices
    engine = StreamingEngine(spanned, ON)
    first = process_clip(engine, own[:32000], mic[:32000])  # process_clip resets first
    engine.push_self_audio(own[:5000], 16000, 0.0)
    engine.push_partner_audio(mic[:7000], 16000, 0.0)
    engine.step()
    np.testing.assert_array_equal(process_clip(engine, own[:32000], mic[:32000]), first)
    # After a stall the inputs continue at a frame boundary: cleaned as a new stream there.
    tracks, stage = InputTracks(RIG, 16000 * 20, 10.0), EchoStage(True)
    for which, voice in enumerate((own, mic)):
        tracks.push_audio(which, voice[:20000], 16000, 0.0)
    stage.advance(tracks, final=False)
    tracks.restart_at(64000)
    stage.restart(64000)
    for which, voice in enumerate((own, mic)):
        tracks.push_audio(which, voice[64000:96000], 16000, 4.0)
    stage.advance(tracks, final=False)
    tracks.end(0)
    assert stage.advance(tracks, final=True) == 96000
    np.testing.assert_array_equal(tracks.read_audio(64000, 96000)[1],
                                  cancel_echo(mic[64000:96000], own[64000:96000]))


def test_a_stalled_stream_with_echo_cancellation_skips_ahead_and_goes_on(voices, spanned):
    own, mic = voices
    engine = StreamingEngine(spanned, StreamConfig(echo_cancellation=True, max_buffer_s=1.0))
    frames = []
    for start, stop in ((0, 32000), (80000, 128000)):  # 3 s without input in between
        for i in range(start, stop, 640):
            t = i / 16000
            engine.push_self_audio(own[i:i + 640], 16000, t)
            engine.push_partner_audio(mic[i:i + 640], 16000, t)
            frames += engine.step(t + 0.05)
    assert engine.stats.frames_skipped > 0 and len(frames) > 80
    assert all(np.isfinite(f.values).all() for f in frames)


def test_a_frame_waits_one_10_ms_frame_more_for_its_input(spanned):
    voice = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    engines = [StreamingEngine(spanned, StreamConfig(echo_cancellation=on))
               for on in (False, True)]
    for engine in engines:
        engine.push_self_audio(voice[:3200], 16000, 0.0)  # need(0): 200 ms lookahead
        engine.push_partner_audio(voice[:3200], 16000, 0.0)
    off, on = engines
    assert on.next_batch_due_s() - off.next_batch_due_s() == pytest.approx(0.01)
    assert len(off.step()) == 1 and on.step() == []
    on.push_self_audio(voice[3200:3360], 16000, 0.2)
    on.push_partner_audio(voice[3200:3360], 16000, 0.2)
    assert len(on.step()) == 1


def test_echo_cancellation_is_fixed_for_a_running_engine(spanned):
    engine = StreamingEngine(spanned)
    with pytest.raises(ValueError, match="StreamConfig.echo_cancellation is read-only"):
        engine.reconfigure(ON)
    with pytest.raises(ValueError, match="StreamConfig.echo_cancellation must be a bool"):
        StreamConfig(echo_cancellation="yes")  # type: ignore[arg-type]


def test_off_the_stage_passes_the_partner_through():
    tracks, stage = InputTracks(RIG, 16000 * 5, 10.0), EchoStage(False)
    voice = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    for which in (0, 1):
        tracks.push_audio(which, voice, 16000, 0.0)
    assert stage.advance(tracks, final=False) == 1000 and stage.input_needed(3200) == 3200
    np.testing.assert_array_equal(tracks.read_audio(0, 1000)[1], voice)
