"""ModelConfig: checks, presets, field groups, the lookahead plan, and the package's exports."""
from __future__ import annotations

import dataclasses

import pytest

from dualtalk_core import config_files as config_io
from dualtalk_core.model import (ARCH_FIELDS, LATER_FIELDS, PRESETS, RUNTIME_FIELDS,
                                 DualTalkModel, ModelConfig, lookahead_plan)
from dualtalk_core.model.model_config import replace_fields


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip(tmp_path, preset, suffix):
    path = tmp_path / f"model{suffix}"
    config_io.save(PRESETS[preset], path)
    assert config_io.load(ModelConfig, path) == PRESETS[preset]
    assert config_io.from_dict(ModelConfig, config_io.to_dict(PRESETS[preset])) == PRESETS[preset]


def test_bad_presets_and_fields():
    with pytest.raises(ValueError, match="official"):
        DualTalkModel.from_preset("huge")
    with pytest.raises(ValueError, match="feature_dimm"):
        DualTalkModel.from_preset("lite", feature_dimm=3)
    with pytest.raises(ValueError, match="rig"):
        ModelConfig(rig="smplx")
    with pytest.raises(ValueError, match="device"):
        ModelConfig(device="tpu")
    with pytest.raises(ValueError, match="hop"):
        ModelConfig(stft_hop_ms=15.0)
    with pytest.raises(ValueError, match="n_heads"):
        ModelConfig(feature_dim=50)
    with pytest.raises(ValueError, match="lstm_layers"):
        ModelConfig(lstm_layers=0)


def test_official_network_has_no_causal_configuration():
    with pytest.raises(ValueError, match="lookahead_frames"):
        ModelConfig(front_end="wav2vec2", lookahead_frames=4)
    with pytest.raises(ValueError, match="lookahead_frames"):
        ModelConfig(lstm_bidirectional=True)
    with pytest.raises(ValueError, match=">= 0"):
        ModelConfig(lookahead_frames=-1)


def test_field_groups_partition_the_config():
    """Loading compares ARCH_FIELDS and lets RUNTIME_FIELDS differ: every field is one or the
    other, and a field added later must be an architecture field with a default."""
    names = [f.name for f in dataclasses.fields(ModelConfig)]
    assert sorted(ARCH_FIELDS + RUNTIME_FIELDS) == sorted(names)
    assert not set(ARCH_FIELDS) & set(RUNTIME_FIELDS)
    assert set(LATER_FIELDS) <= set(ARCH_FIELDS)
    assert all(getattr(ModelConfig(), k) == v for k, v in LATER_FIELDS.items())


def test_replace_fields_rejects_unknown_names():
    lite = PRESETS["lite"]
    assert replace_fields(lite, {"dropout": 0.0}) == dataclasses.replace(lite, dropout=0.0)
    assert lite.dropout == 0.1  # the preset itself is untouched
    with pytest.raises(ValueError, match=r"\['n_layers'\]"):
        replace_fields(lite, {"n_layers": 3})


@pytest.mark.parametrize("lookahead_frames", [0, 1, 2, 4, 7, 20])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_lookahead_plan_spends_exactly_the_budget(lookahead_frames, n_layers):
    config = ModelConfig(lookahead_frames=lookahead_frames, n_interaction_layers=n_layers)
    plan = lookahead_plan(config)
    assert plan["causal"] == 0
    assert 0 <= plan["audio_conv"] <= config.audio_conv_kernel_frames - 1
    assert len(plan["interaction_layers"]) == n_layers
    assert min(plan["interaction_layers"]) >= 0
    assert plan["audio_conv"] + sum(plan["interaction_layers"]) == lookahead_frames
    assert max(plan["interaction_layers"]) - min(plan["interaction_layers"]) <= 1  # spread


def test_lookahead_plan_of_the_official_network_is_unbounded():
    plan = lookahead_plan(PRESETS["official"])
    assert plan == {"audio_conv": None, "interaction_layers": [None] * 3, "causal": None}


def test_old_import_paths_name_the_same_objects():
    """Other packages still import from `network` while they switch to the package."""
    import dualtalk_core.model as package
    from dualtalk_core.model import network

    for name in ("DualTalkModel", "ModelConfig", "PRESETS", "ARCH_FIELDS", "RUNTIME_FIELDS",
                 "LATER_FIELDS", "lookahead_plan", "resolve_device"):
        assert getattr(network, name) is getattr(package, name), name
    assert sorted(package.__all__) == sorted(
        ["DualTalkModel", "ModelConfig", "PRESETS", "ARCH_FIELDS", "RUNTIME_FIELDS",
         "LATER_FIELDS", "lookahead_plan", "resolve_device", "DEFAULT_MODEL_DIR"])
