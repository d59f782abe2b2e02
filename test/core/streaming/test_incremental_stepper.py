"""The engine streams a causal, span-bounded model frame by frame: its frames equal whole-clip
inference of the stream (<= 1e-5), at any hop and input rate; other models stay windowed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dualtalk_core.audio.resampling import resample_to_16k
from dualtalk_core.model import DualTalkModel
from dualtalk_core.streaming import StreamConfig, StreamingEngine, process_clip
from dualtalk_core.streaming.incremental_stepper import IncrementalStepper
from dualtalk_core.streaming.model_stepper import WindowedStepper
from dualtalk_core.streaming.smoothing import OneEuroConfig

torch.set_num_threads(1)
RAW = dict(smoothing=OneEuroConfig(enabled=False), crossfade_ms=0.0)


@pytest.fixture(scope="module")
def spanned() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu", attention_span_frames=40).eval()


def _turns(n: int, rate: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    turn = (np.arange(n) // int(1.3 * rate)) % 2 == 0
    return ((0.2 * rng.standard_normal(n) * turn).astype(np.float32),
            (0.2 * rng.standard_normal(n) * ~turn).astype(np.float32))


@pytest.mark.parametrize("hop_ms, chunk_ms", [(40.0, 32.0), (80.0, 40.0), (120.0, 10.0)])
def test_streaming_equals_the_whole_clip(spanned, hop_ms, chunk_ms):
    frames = 260  # 10.4 s: six times the 40-frame span, eight role switches
    own, other = _turns(frames * 640 - 211, 16000, 1)
    motion = (0.1 * np.random.default_rng(2).random((frames, 55))).astype(np.float32)
    engine = StreamingEngine(spanned, StreamConfig(hop_ms=hop_ms, **RAW))
    assert isinstance(engine._stepper, IncrementalStepper)
    streamed = process_clip(engine, own, other, motion, chunk_ms=chunk_ms)
    np.testing.assert_allclose(streamed, spanned.predict(own, other, motion), atol=1e-5, rtol=0)
    assert engine.stats.frames_emitted == frames


def test_streaming_48_khz_equals_the_whole_clip_of_its_resampled_audio(spanned):
    own, other = _turns(48000 * 6, 48000, 3)
    motion = (0.1 * np.random.default_rng(4).random((150, 55))).astype(np.float32)
    engine = StreamingEngine(spanned, StreamConfig(hop_ms=40.0, **RAW))
    streamed = process_clip(engine, own, other, motion, sample_rate=48000, chunk_ms=20)
    whole = spanned.predict(resample_to_16k(own, 48000), resample_to_16k(other, 48000), motion)
    np.testing.assert_allclose(streamed, whole, atol=1e-5, rtol=0)


def test_models_without_a_span_and_enforced_lookaheads_stay_windowed(spanned):
    torch.manual_seed(0)
    unbounded = DualTalkModel.from_preset("lite", device="cpu").eval()
    assert isinstance(StreamingEngine(unbounded)._stepper, WindowedStepper)
    enforced = StreamConfig(lookahead_ms=120.0, hop_ms=80.0)
    assert isinstance(StreamingEngine(spanned, enforced)._stepper, WindowedStepper)
    assert isinstance(StreamingEngine(spanned, StreamConfig(stepper="windowed"))._stepper,
                      WindowedStepper)
    with pytest.raises(ValueError, match="stepper='incremental' needs"):
        StreamingEngine(unbounded, StreamConfig(stepper="incremental"))
