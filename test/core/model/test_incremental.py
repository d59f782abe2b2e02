"""Frame-by-frame inference equals whole-clip inference of the same causal network (<= 1e-5),
over clips longer than the attention span, with role switches, in any chunking."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dualtalk_core.model import DualTalkModel
from dualtalk_core.model.incremental import IncrementalDualTalk
from dualtalk_core.model.incremental_layers import LogMel

torch.set_num_threads(1)


def _conversation(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two voices taking turns every 1.5 s, and a moving partner face."""
    rng = np.random.default_rng(seed)
    n = frames * 640
    turn = (np.arange(n) // 24000) % 2 == 0
    own = (0.2 * rng.standard_normal(n) * turn).astype(np.float32)
    other = (0.2 * rng.standard_normal(n) * ~turn).astype(np.float32)
    return own, other, (0.1 * rng.random((frames, 55))).astype(np.float32)


def _lite(**overrides) -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu", **overrides).eval()


@pytest.mark.parametrize("lookahead, span", [(4, 30), (2, 50), (0, 12), (4, None)])
def test_incremental_equals_whole_clip(lookahead, span):
    model = _lite(lookahead_frames=lookahead, attention_span_frames=span)
    own, other, motion = _conversation(130, lookahead)
    whole = model.predict(own, other, motion, clip=False)  # (T, C)
    mel = model.log_mel_frames(np.stack([own, other]), len(motion))
    net = IncrementalDualTalk(model)
    assert net.delay_frames == lookahead
    rng, out, j = np.random.default_rng(1), [], 0
    while j < len(motion):
        n = int(rng.integers(1, 5))
        step = net.push(mel[:, j:j + n], motion[j:j + n])
        assert len(step) == max(0, min(j + n, len(motion)) - lookahead) - max(0, j - lookahead)
        out.append(step)
        j += n
    out.append(net.flush())
    got = np.concatenate(out)
    assert got.shape == whole.shape
    np.testing.assert_allclose(got, whole, atol=1e-5, rtol=0)


def test_a_stream_shorter_than_the_lookahead_flushes_like_a_short_clip():
    model = _lite(attention_span_frames=20)
    own, other, motion = _conversation(3, 5)
    mel = model.log_mel_frames(np.stack([own, other]), 3)
    net = IncrementalDualTalk(model)
    assert len(net.push(mel, motion)) == 0
    whole = model.predict(own, other, motion, clip=False)
    np.testing.assert_allclose(net.flush(), whole, atol=1e-5)
    net.reset()  # a new stream gives the same frames again
    net.push(mel, motion)
    np.testing.assert_allclose(net.flush(), whole, atol=1e-5)


def test_the_numpy_log_mel_is_the_networks():
    model = _lite()
    audio = (0.3 * np.random.default_rng(2).standard_normal((2, 640 * 9 + 77))).astype(
        np.float32)
    for frames in (1, 5, 10, 12):
        np.testing.assert_allclose(LogMel(model.joint_encoder.log_mel)(audio, frames),
                                   model.log_mel_frames(audio, frames), atol=1e-5)


def test_non_causal_networks_are_refused():
    with pytest.raises(ValueError, match="causal log-mel"):
        IncrementalDualTalk(_lite(lookahead_frames=None))
    with pytest.raises(ValueError, match="attention_span_frames"):
        DualTalkModel.from_preset("lite", device="cpu", lookahead_frames=None,
                                  attention_span_frames=10)
