"""StreamConfig: one declaration per field (default, description, bounds, liveness), checked."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dualtalk_core import config_fields
from dualtalk_core.config_files import to_dict
from dualtalk_core.streaming import StreamConfig
from dualtalk_core.streaming.smoothing import OneEuroConfig

NODE_PARAMETERS = Path(__file__).resolve().parents[3] / "config" / "dualtalk.yaml"


@pytest.mark.parametrize("field, value", [
    ("window_ms", 39.0), ("window_ms", 60001.0), ("hop_ms", 0.0), ("hop_ms", 2040.0),
    ("lookahead_ms", -2.0), ("lookahead_ms", 2001.0), ("crossfade_ms", -40.0),
    ("crossfade_ms", 1040.0), ("input_timeout_ms", -1.0), ("input_timeout_ms", 10001.0),
    ("stamp_tolerance_ms", 21.0), ("max_buffer_s", 0.5), ("max_buffer_s", 601.0)])
def test_out_of_range_values_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"StreamConfig\.{field} must be in \["):
        StreamConfig(**{field: value})


@pytest.mark.parametrize("field, value", [
    ("hop_ms", "80"), ("window_ms", True), ("max_buffer_s", None), ("input_timeout_ms", [150]),
    ("crossfade_ms", float("nan")), ("lookahead_ms", float("inf"))])
def test_wrongly_typed_values_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"StreamConfig\.{field} must be a"):
        StreamConfig(**{field: value})


@pytest.mark.parametrize("field, value", [
    ("min_cutoff_hz", 0.0), ("beta", -1.0), ("d_cutoff_hz", 101.0), ("enabled", 1)])
def test_smoothing_values_are_checked_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"OneEuroConfig\.{field} must be"):
        OneEuroConfig(**{field: value})
    with pytest.raises(ValueError, match=rf"OneEuroConfig\.{field}"):
        StreamConfig(smoothing={field: value})  # type: ignore[arg-type]


def test_cross_field_checks_and_normalised_values():
    with pytest.raises(TypeError, match="StreamConfig.smoothing must be a OneEuroConfig"):
        StreamConfig(smoothing=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiple of 40"):
        StreamConfig(hop_ms=100.0)
    with pytest.raises(ValueError, match="window_ms=80.0 must be >= hop_ms"):
        StreamConfig(window_ms=80.0, hop_ms=80.0)
    assert StreamConfig(window_ms=120.0, hop_ms=80.0).window_ms == 120.0
    config = StreamConfig(lookahead_ms=None, hop_ms=120)  # type: ignore[arg-type]
    assert config.lookahead_ms == -1.0 and config.hop_ms == 120.0
    assert isinstance(config.hop_ms, float)
    assert StreamConfig(smoothing={"beta": 2}).smoothing == OneEuroConfig(beta=2.0)  # type: ignore


def test_every_field_is_described_and_only_what_a_running_engine_applies_is_live():
    live = set()
    for cls, prefix in ((StreamConfig, ""), (OneEuroConfig, "smoothing.")):
        for f in dataclasses.fields(cls):
            spec = config_fields.info(f)
            assert spec.description.endswith(".") and 20 < len(spec.description) < 400, f.name
            live |= {prefix + f.name} if spec.live else set()
    assert live == {"input_timeout_ms", "absent_after_ms", "smoothing.enabled",
                    "smoothing.min_cutoff_hz",
                    "smoothing.beta", "smoothing.d_cutoff_hz"}
    assert not {f.name for f in dataclasses.fields(StreamConfig)} & {"fps", "device"}


def test_the_node_runs_the_dataclass_defaults():
    """One source of defaults: the node's parameters file repeats StreamConfig's exactly."""
    node = yaml.safe_load(NODE_PARAMETERS.read_text())["/**/dualtalk_node"]["ros__parameters"]
    assert node["stream"] == to_dict(StreamConfig())
    assert StreamConfig().hop_ms == 40.0
