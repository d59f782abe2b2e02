"""Settings dataclasses are the one source of every node default; the YAML is generated.

Fails when config/dualtalk.yaml and the dataclasses disagree, when a parameter lacks a
description or bounds, or when a bad value gets through without naming its parameter.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from dualtalk_ros.bridge.node_settings import NODE_SETTINGS, DualTalkNodeSettings
from dualtalk_ros.bridge.param_schema import (PARAMS_FILE, defaults_from_file, param_specs,
                                              params_of, read_only_changes,
                                              render_params_yaml, settings_from_params)


def test_the_params_file_is_what_the_dataclasses_generate():
    assert PARAMS_FILE.read_text() == render_params_yaml(), (
        "config/dualtalk.yaml is stale: python -m dualtalk_ros.bridge.param_schema --write")


@pytest.mark.parametrize("node", sorted(NODE_SETTINGS))
def test_the_params_file_reads_back_as_the_defaults_with_their_types(node):
    from_file = defaults_from_file(PARAMS_FILE, node)
    defaults = params_of(NODE_SETTINGS[node]())
    assert from_file == defaults
    assert {k: type(v) for k, v in from_file.items()} == {k: type(v) for k, v in defaults.items()}


@pytest.mark.parametrize("node", sorted(NODE_SETTINGS))
def test_every_parameter_is_described_and_bounded(node):
    for spec in param_specs(NODE_SETTINGS[node]):
        assert len(spec.info.description) > 10, spec.name
        if spec.info.choices is not None:
            assert spec.default in spec.info.choices, spec.name
        elif spec.kind in (int, float):
            assert spec.info.min_value <= spec.default <= spec.info.max_value, spec.name


def test_the_node_runs_the_streaming_defaults_of_the_core():
    node = DualTalkNodeSettings()
    assert node.stream.hop_ms == 40.0 and node.stream.window_ms == 8000.0
    assert params_of(node)["stream.smoothing.min_cutoff_hz"] == 1.5


@pytest.mark.parametrize("values, match", [
    ({"stream.hop_ms": -5.0}, r"parameter stream.hop_ms must be in \[40, 2000\]"),
    ({"stream.hop_ms": "fast"}, "parameter stream.hop_ms must be a number"),
    ({"stream.smoothing.enabled": 1}, "parameter stream.smoothing.enabled must be a bool"),
    ({"torch_threads": 1.5}, "parameter torch_threads must be a number"),
    ({"device": "tpu"}, "parameter device must be one of"),
    ({"inputs.max_clock_skew_s": float("nan")}, "finite"),
    ({"hop_ms": 50.0}, r"unknown parameter\(s\) \['hop_ms'\]"),
    ({"stream.hop_ms": 60.0}, "parameter stream.hop_ms must be a multiple of 40"),
    ({"diagnostics.inference_warn_ratio": 2.0},
     r"parameter diagnostics.inference_warn_ratio \(2.0\) must not exceed"),
    ({"inputs.queue_messages": -1}, r"parameter inputs.queue_messages must be in \[10, 100000\]"),
    ({"diagnostics.period_s": 0}, r"parameter diagnostics.period_s must be in \[0.1, 60\]"),
])
def test_bad_values_are_refused_naming_the_parameter(values, match):
    with pytest.raises(ValueError, match=match):
        settings_from_params(DualTalkNodeSettings, values)


def test_an_integer_is_a_float_value_and_absent_names_keep_defaults():
    s = settings_from_params(DualTalkNodeSettings, {"stream.hop_ms": 120, "frame_id": "face"})
    assert s.stream.hop_ms == 120.0 and isinstance(s.stream.hop_ms, float)
    assert s.frame_id == "face" and s.output.delay_ms == DualTalkNodeSettings().output.delay_ms


def test_read_only_changes_are_listed_and_live_ones_are_not():
    old = DualTalkNodeSettings()
    new = settings_from_params(DualTalkNodeSettings, {
        "stream.hop_ms": 120.0, "stream.smoothing.beta": 0.2, "frame_id": "x",
        "output.delay_ms": 250.0, "model": "lite", "device": "cpu"})
    # model is live (swapped in the background), device is not
    assert read_only_changes(old, new) == ["device", "stream.hop_ms"]


def test_the_check_command_passes_on_the_committed_file():
    done = subprocess.run([sys.executable, "-m", "dualtalk_ros.bridge.param_schema", "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
