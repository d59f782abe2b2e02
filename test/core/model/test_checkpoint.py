"""Checkpoints: safetensors round trip, the published .pth (both weight-norm spellings), errors."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from dualtalk_core.model import ARCH_FIELDS, DualTalkModel

# One thread: on a shared two-core machine two threads contend and run several times slower.
torch.set_num_threads(1)

# The official architecture with a tiny wav2vec2 (a .pth of the real one is 2.6 GB).
TINY_OFFICIAL = dict(audio_hidden_dim=32, wav2vec2_layers=1, wav2vec2_heads=2,
                     wav2vec2_ff_dim=64, feature_dim=16, ff_dim=32, device="cpu")
POS_CONV = "joint_encoder.audio_encoder1.encoder.pos_conv_embed.conv."


def _inputs(n_samples: int, channels: int):
    g = torch.Generator().manual_seed(0)
    frames = -(-n_samples // 640)
    return (0.1 * torch.randn(1, n_samples, generator=g),
            0.1 * torch.randn(1, n_samples, generator=g),
            0.1 * torch.randn(1, frames, channels, generator=g))


def _assert_same_weights(a: DualTalkModel, b: DualTalkModel) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def lite() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("lite", device="cpu", lookahead_frames=2).eval()


@pytest.fixture(scope="module")
def tiny_official() -> DualTalkModel:
    torch.manual_seed(0)
    return DualTalkModel.from_preset("official", **TINY_OFFICIAL).eval()


def test_lite_round_trip(tmp_path, lite):
    folder = lite.save(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    for path in (folder, folder / "model.safetensors"):
        loaded = DualTalkModel.load(path, device="cpu").eval()
        assert loaded.config == lite.config
        _assert_same_weights(lite, loaded)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(*_inputs(8000, 55)), lite(*_inputs(8000, 55)))


def test_saved_files_are_readable_by_every_user(tmp_path, lite):
    """0644/0755 whatever the umask: safetensors alone writes its file 0600."""
    old = os.umask(0o077)
    try:
        folder = lite.save(tmp_path / "ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {
        "config.json": 0o644, "model.safetensors": 0o644}


def test_load_checks_architecture_fields(tmp_path, lite):
    folder = lite.save(tmp_path / "ckpt")
    loaded = DualTalkModel.load(folder, device="cpu", dropout=0.0)  # run-time field: fine
    assert loaded.config.dropout == 0.0 and loaded.config.lookahead_frames == 2
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "device": "cuda"}))
    assert DualTalkModel.load(folder).config.device == "auto"  # trained on a GPU, runs here
    with pytest.raises(ValueError, match="feature_dim"):
        DualTalkModel.load(folder, feature_dim=32)
    config = json.loads((folder / "config.json").read_text())
    del config["partner_audio_residual"]  # saved before the field existed: trained without it
    (folder / "config.json").write_text(json.dumps(config))
    assert DualTalkModel.load(folder).config.partner_audio_residual is False
    with pytest.raises(ValueError, match="partner_audio_residual"):
        DualTalkModel.load(folder, partner_audio_residual=True)
    del config["n_mels"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="n_mels"):
        DualTalkModel.load(folder)
    config["n_mels"], config["n_layers"] = 64, 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="n_layers"):
        DualTalkModel.load(folder)


def test_wrong_weights_list_missing_and_unexpected_keys(tmp_path, lite):
    folder = lite.save(tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["rig"] = "flame56"  # weights are for 55 channels
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="shape mismatches.*blendshape_encoder.0.weight"):
        DualTalkModel.load(folder)
    state = dict(lite.state_dict())
    state["extra.weight"] = state.pop("synthesis_module.modulation_layer.bias")
    torch.save(state, tmp_path / "lite.pth")
    architecture = {k: getattr(lite.config, k) for k in ARCH_FIELDS}  # a .pth has no config
    with pytest.raises(ValueError, match=r"missing keys synthesis_module.modulation_layer.bias, "
                                         r"unexpected keys extra.weight, shape mismatches \[\]"):
        DualTalkModel.load(tmp_path / "lite.pth", **architecture)
    state["synthesis_module.modulation_layer.bias"] = state.pop("extra.weight")
    torch.save(state, tmp_path / "lite.pth")
    assert DualTalkModel.load(tmp_path / "lite.pth", **architecture).lookahead_ms == 120.0


@pytest.mark.parametrize("spelling", ["new", "old"])
@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
def test_published_pth(tmp_path, tiny_official, spelling, wrapper):
    state = dict(tiny_official.state_dict())
    assert POS_CONV + "parametrizations.weight.original0" in state
    if spelling == "old":  # as saved by older transformers (torch.nn.utils.weight_norm)
        state[POS_CONV + "weight_g"] = state.pop(POS_CONV + "parametrizations.weight.original0")
        state[POS_CONV + "weight_v"] = state.pop(POS_CONV + "parametrizations.weight.original1")
    path = tmp_path / "DualTalk.pth"
    torch.save(state if wrapper is None else {wrapper: state, "epoch": 3}, path)
    loaded = DualTalkModel.load(path, **TINY_OFFICIAL).eval()
    _assert_same_weights(tiny_official, loaded)
    assert loaded.lookahead_ms is None and loaded.config.rig == "flame56"
    with torch.inference_mode():
        torch.testing.assert_close(loaded(*_inputs(8000, 56)), tiny_official(*_inputs(8000, 56)))
    for name, p in loaded.named_parameters():
        assert p.requires_grad == (".feature_extractor." not in name), name


class _Exploit:
    """Pickles into a call that creates a file: a weights-only loader must refuse it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pth_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _Exploit(str(tmp_path / "pwned"))},
               path)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        DualTalkModel.load(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_or_unsupported_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        DualTalkModel.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        DualTalkModel.load(tmp_path)  # a folder without a checkpoint
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported"):
        DualTalkModel.load(tmp_path / "weights.npz")


def test_mismatch_message_lists_a_few_keys_and_counts_them(tmp_path, lite):
    torch.save(lite.state_dict(), tmp_path / "lite.pth")  # no config: read as `official`
    with pytest.raises(ValueError, match=r"does not match the wav2vec2 network \(rig flame56\): "
                                         r"missing keys .* \.\.\. \(\d+ in all\)"):
        DualTalkModel.load(tmp_path / "lite.pth", **TINY_OFFICIAL)


def test_half_precision_weights_load_as_float32(tmp_path, lite):
    torch.save({k: v.half() for k, v in lite.state_dict().items()}, tmp_path / "half.pth")
    architecture = {k: getattr(lite.config, k) for k in ARCH_FIELDS}
    loaded = DualTalkModel.load(tmp_path / "half.pth", device="cpu", **architecture)
    for key, value in loaded.state_dict().items():
        assert value.dtype == torch.float32, key
        torch.testing.assert_close(value, lite.state_dict()[key].half().float())
