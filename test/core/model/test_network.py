"""DualTalkModel: the published layout, shapes, the lite lookahead bound, inputs, fast_init."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dualtalk_core.model import DualTalkModel
from dualtalk_core.model.audio_encoders import LogMel
from dualtalk_core.model.checkpoint import match_weight_norm_spelling
from dualtalk_core.model.model_weights import UNIFORM_BOUND

# One thread: on a shared two-core machine two threads contend and run several times slower.
torch.set_num_threads(1)

# The published network's key/shape table (from the reference notes), kept with the tests.
TSV = Path(__file__).parent / "data" / "dualtalk_official_state_dict.tsv"


@pytest.fixture(scope="module")
def official() -> DualTalkModel:
    """The official network (~650 M parameters) with cheap uniform weights (`fast_init`):
    the wav2vec2 initialisation of two 24-layer encoders takes ~20 s on two busy cores."""
    torch.manual_seed(0)
    return DualTalkModel.from_preset("official", fast_init=True, device="cpu").eval()


@pytest.fixture(scope="module")
def lite() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu").eval()


def _inputs(n_samples: int, channels: int, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = math.ceil(n_samples / 640)
    return (0.1 * torch.randn(batch, n_samples, generator=g),
            0.1 * torch.randn(batch, n_samples, generator=g),
            0.1 * torch.randn(batch, frames, channels, generator=g))


# ------------------------------------------------------------------------- official network
def test_official_state_dict_matches_published_table(official):
    rows = [line.rstrip("\n").split("\t") for line in TSV.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    published = {key: shape for key, shape in rows}
    state = match_weight_norm_spelling(official.state_dict(), published)
    ours = {k: "x".join(str(s) for s in v.shape) for k, v in state.items()}
    assert sorted(set(published) - set(ours)) == []
    assert sorted(set(ours) - set(published)) == []
    assert ours == published


def test_official_forward_shape_and_frozen_cnn(official):
    with torch.inference_mode():
        out = official(*_inputs(32000, 56))
    assert out.shape == (1, 50, 56)
    assert torch.isfinite(out).all()
    assert official.lookahead_ms is None and official.config.rig == "flame56"
    for name, p in official.named_parameters():
        assert p.requires_grad == (".feature_extractor." not in name), name


def test_missing_wav2vec2_folder_names_what_it_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json.*model.safetensors"):
        DualTalkModel.from_preset("official", wav2vec2_path=str(tmp_path / "w2v"))


def test_wav2vec2_path_loads_pretrained_weights(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    tiny = dict(audio_hidden_dim=32, wav2vec2_layers=1, wav2vec2_heads=2, wav2vec2_ff_dim=64)
    w2v = Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, feat_extract_norm="layer",
                                       conv_bias=True, do_stable_layer_norm=True))
    w2v.save_pretrained(tmp_path)
    model = DualTalkModel.from_preset("official", wav2vec2_path=str(tmp_path), device="cpu",
                                      **tiny)
    for enc in (model.joint_encoder.audio_encoder1, model.joint_encoder.audio_encoder2):
        torch.testing.assert_close(enc.feature_projection.projection.weight,
                                   w2v.feature_projection.projection.weight)


# ------------------------------------------------------------------------- lite network
def test_lite_shapes_and_predict(lite):
    with torch.inference_mode():
        out = lite(*_inputs(16000 + 100, 55, batch=2))  # 26 frames: ceil
        assert out.shape == (2, 26, 55)
        a, b, m = _inputs(16000, 55)
        assert lite(a, b, m[:, :20], n_frames=20).shape == (1, 20, 55)
    lite.train()
    pred = lite.predict(a[0].numpy(), b[0].numpy(), m[0].numpy())
    assert lite.training, "predict must restore the training flag"
    lite.eval()
    assert pred.shape == (25, 55) and pred.dtype == np.float32
    assert lite.config.rig == "arkit52" and lite.device.type == "cpu"
    assert sum(p.numel() for p in lite.parameters()) < 2_000_000


@pytest.mark.parametrize("residual", [False, True])
def test_partner_audio_reaches_the_output_without_a_face_only_with_the_residual(residual):
    """As published, partner audio only queries attention over partner motion: with a constant
    partner face (no tracker) it cannot matter. `partner_audio_residual` adds it directly."""
    torch.manual_seed(2)
    model = DualTalkModel.from_preset("lite", partner_audio_residual=residual,
                                      device="cpu").eval()
    own, partner, motion = _inputs(640 * 20, 55)
    still = motion[:, :1].expand_as(motion).contiguous()  # one face held throughout
    with torch.inference_mode():
        diff = (model(own, partner, still) - model(own, torch.zeros_like(partner), still)).abs()
        moving = (model(own, partner, motion) - model(own, partner, still)).abs()
    assert (diff.max() > 1e-4) == residual, diff.max()
    assert moving.max() > 1e-4  # the partner's face matters either way


@pytest.mark.parametrize("lookahead_frames", [0, 4])
def test_lite_lookahead_bound_is_exact(lookahead_frames):
    """Frame t ignores audio from 640 t + lookahead_ms * 16 samples on (outputs bit-identical)
    but depends on the 40 ms just before that bound; partner motion more than lookahead_frames
    ahead never matters."""
    torch.manual_seed(1)
    model = DualTalkModel.from_preset("lite", lookahead_frames=lookahead_frames,
                                      device="cpu").eval()
    assert model.lookahead_ms == pytest.approx(40.0 * (lookahead_frames + 1))
    t, n_samples = 12, 640 * 30
    bound = 640 * t + round(model.lookahead_ms * 16)  # first sample frame t may not see
    motion_bound = t + lookahead_frames + 1
    inputs = [x.requires_grad_() for x in _inputs(n_samples, 55)]
    grads = torch.autograd.grad(model(*inputs)[0, t].sum(), inputs)
    with torch.inference_mode():
        base = model(*inputs)[0, t]
    for which, stop in ((0, bound), (1, bound), (2, motion_bound)):
        changed = [x.detach().clone() for x in inputs]
        changed[which][0, stop:] += 0.5
        with torch.inference_mode():
            assert torch.equal(model(*changed)[0, t], base), f"input {which}"
        assert grads[which][0, stop:].abs().max() == 0
    # ...and the bound is tight: the last 40 ms of audio before it do matter.
    for which in (0, 1):
        assert grads[which][0, bound - 640:bound].abs().sum() > 0
    assert grads[2][0, t].abs().sum() > 0


def test_log_mel_frames_depend_on_their_own_samples_only():
    """No clip statistics: a frame is the same in a prefix, and in a window starting one frame
    earlier (its STFT windows reach 15 ms back), as in the whole clip."""
    log_mel = LogMel(n_mels=64, window_ms=25.0, hop_ms=10.0)
    audio = 0.1 * torch.randn(1, 640 * 20, generator=torch.Generator().manual_seed(0))
    full = log_mel(audio, 20)
    assert full.shape == (1, 20, 4 * 64)
    torch.testing.assert_close(log_mel(audio[:, : 640 * 12], 12), full[:, :12])
    torch.testing.assert_close(log_mel(audio[:, 640 * 5:], 15)[:, 1:], full[:, 6:])


# ------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("case, message", [
    ("nan", "NaN or inf"), ("inf", "NaN or inf"), ("empty", "0 samples"),
    ("wrong_channels", "partner_motion"), ("wrong_frames", "partner_motion"),
    ("one_dim", r"\(B, N\)"), ("mismatched_audio", r"\(B, N\)"),
])
def test_bad_inputs_raise_value_error(lite, case, message):
    a, b, m = _inputs(6400, 55)
    if case == "nan":
        a[0, 100] = float("nan")
    elif case == "inf":
        b[0, 7] = float("inf")
    elif case == "empty":
        a, b, m = a[:, :0], b[:, :0], m[:, :0]
    elif case == "wrong_channels":
        m = torch.zeros(1, 10, 56)
    elif case == "wrong_frames":
        m = m[:, :9]
    elif case == "one_dim":
        a, b = a[0], b[0]
    elif case == "mismatched_audio":
        b = b[:, :-1]
    with pytest.raises(ValueError, match=message):
        lite(a, b, m)


def test_bad_types_and_predict_inputs(lite):
    a, b, m = _inputs(6400, 55)
    with pytest.raises(TypeError, match="self_audio"):
        lite(a.numpy(), b, m)
    with pytest.raises(TypeError, match="partner_audio"):
        lite(a, (b * 1000).long(), m)
    with pytest.raises(ValueError, match="float"):
        lite.predict((a[0].numpy() * 3e4).astype(np.int16), b[0].numpy(), m[0].numpy())
    with pytest.raises(ValueError, match="partner_motion"):
        lite.predict(a[0].numpy(), b[0].numpy(), m[0, :, :54].numpy())
    with pytest.raises(ValueError, match="n_frames"):
        lite(a, b, m, n_frames=0)


# ------------------------------------------------------------------------- fast_init
# The official architecture with a tiny wav2vec2: its normal build is quick enough to compare.
TINY_OFFICIAL = dict(audio_hidden_dim=32, wav2vec2_layers=1, wav2vec2_heads=2,
                     wav2vec2_ff_dim=64, feature_dim=16, ff_dim=32)


@pytest.mark.parametrize("preset, overrides", [("lite", {}), ("official", TINY_OFFICIAL)])
def test_fast_init_builds_the_same_network_with_small_real_weights(preset, overrides):
    torch.manual_seed(0)
    normal = DualTalkModel.from_preset(preset, device="cpu", **overrides)
    fast = DualTalkModel.from_preset(preset, fast_init=True, device="cpu", **overrides)
    assert fast.config == normal.config and fast.training
    params, fast_params = dict(normal.named_parameters()), dict(fast.named_parameters())
    assert params.keys() == fast_params.keys()
    for name, p in fast_params.items():
        assert (p.shape, p.dtype, p.device.type) == (params[name].shape, params[name].dtype,
                                                     "cpu"), name
        assert p.requires_grad == params[name].requires_grad, name
        assert p.abs().max() <= UNIFORM_BOUND and p.std() > 0, name
    buffers, fast_buffers = dict(normal.named_buffers()), dict(fast.named_buffers())
    assert buffers.keys() == fast_buffers.keys()
    assert (preset == "lite") == bool(buffers)  # the log-mel filter bank and window
    for name, b in fast_buffers.items():
        assert not b.is_meta and torch.equal(b, buffers[name]), name
    a, b, m = _inputs(6400, normal.n_channels)
    with torch.inference_mode():
        assert torch.isfinite(fast.eval()(a, b, m)).all()


def test_official_fast_init_has_no_meta_tensors(official):
    tensors = list(official.parameters()) + list(official.buffers())
    assert tensors and not any(t.is_meta for t in tensors)
