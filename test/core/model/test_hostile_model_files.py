"""Hostile model files: each is refused with one line naming the file and the problem.

Real files written here: a pickled `.pth` carrying code (torch.save), truncated and corrupted
safetensors, NaN/Inf weights, config.json with unknown or wrongly typed fields. The loaders
raise ValueError (what the CLIs and nodes turn into one line and exit status 2); the CLI test
runs `dualtalk-eval` and `dualtalk-train` as processes and reads their stderr.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dualtalk_core.model import DualTalkModel

torch.set_num_threads(1)  # a shared two-core machine


class _Exploit:
    """Pickles into a call that creates a folder: nothing may execute it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("good") / "lite"
    DualTalkModel.from_preset("lite", device="cpu").save(folder)
    return folder


def _copy(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "model"))


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(ValueError) as caught:
        DualTalkModel.load(path, device="cpu")
    text = str(caught.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def test_a_pickled_pth_with_code_is_refused_without_advising_to_run_it(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "hook": _Exploit(str(tmp_path / "pwned"))}, path)
    text = _refused(path, str(path), "refusing to unpickle", "posix.mkdir")
    assert "weights_only" not in text and "False" not in text
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("cut", ["header", "half", "last_byte"])
def test_truncated_safetensors_name_the_file(tmp_path, good, cut):
    folder = _copy(good, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    keep = {"header": 5, "half": len(data) // 2, "last_byte": len(data) - 1}[cut]
    weights.write_bytes(data[:keep])
    _refused(folder, str(weights), "truncated or corrupted")


def test_a_corrupted_safetensors_header_names_the_file(tmp_path, good):
    folder = _copy(good, tmp_path)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\x00\xff" * 16  # the JSON header is now garbage
    weights.write_bytes(bytes(data))
    _refused(weights, str(weights), "not a readable safetensors file")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, good, bad):
    model = DualTalkModel.load(good, device="cpu")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    name = "synthesis_module.modulation_layer.bias"
    state[name][3] = bad
    from dualtalk_core.model.checkpoint import write_checkpoint

    folder = write_checkpoint(tmp_path / "bad", model.config, state)
    _refused(folder, str(folder / "model.safetensors"), name, "NaN or Inf")
    torch.save(state, tmp_path / "bad.pth")  # the same through the .pth path
    _refused(tmp_path / "bad.pth", str(tmp_path / "bad.pth"), name)


def test_a_truncated_or_foreign_pth_names_the_file(tmp_path, good):
    path = tmp_path / "cut.pth"
    torch.save(DualTalkModel.load(good, device="cpu").state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000])
    _refused(path, str(path), "truncated or corrupted")
    path.write_bytes(b"not a torch file at all")
    _refused(path, str(path), "truncated or corrupted")


@pytest.mark.parametrize("field, value, needles", [
    ("n_heads", "4", ["ModelConfig.n_heads must be int", "'4' (str)"]),
    ("feature_dim", 48.5, ["ModelConfig.feature_dim must be int", "48.5"]),
    ("lookahead_frames", "x", ["ModelConfig.lookahead_frames must be int or None"]),
    ("lstm_bidirectional", 0, ["ModelConfig.lstm_bidirectional must be bool"]),
    ("n_mels", True, ["ModelConfig.n_mels must be int", "True (bool)"]),
    ("rig", 52, ["ModelConfig.rig must be str"]),
    ("n_layers", 3, ["unknown field(s) ['n_layers']"]),
    ("n_heads", 0, ["ModelConfig.n_heads must be >= 1, got 0"]),
    ("dropout", 1.5, ["ModelConfig.dropout must be in [0, 1)"]),
])
def test_config_json_with_unknown_or_wrongly_typed_fields(tmp_path, good, field, value,
                                                          needles):
    folder = _copy(good, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    _refused(folder, str(folder / "config.json"), *needles)


def test_config_json_that_is_not_json(tmp_path, good):
    folder = _copy(good, tmp_path)
    (folder / "config.json").write_text('{"rig": "arkit52",')
    _refused(folder, str(folder / "config.json"), "not valid JSON")


def test_an_integer_is_accepted_for_a_float_field(tmp_path, good):
    folder = _copy(good, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["stft_hop_ms"] = 10
    (folder / "config.json").write_text(json.dumps(config))
    assert DualTalkModel.load(folder, device="cpu").config.stft_hop_ms == 10.0


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          timeout=300)


def test_the_eval_cli_gives_one_line_and_status_2(tmp_path, good):
    folder = _copy(good, tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    done = _run("dualtalk_core.evaluation.eval_cli", "--data", str(tmp_path / "none"),
                "--model", str(folder), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1 and str(weights) in lines[0] and "truncated" in lines[0], done.stderr


def test_the_train_cli_names_the_config_file_and_field(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("model_preset: lite\nlr: fast\n")
    done = _run("dualtalk_core.training.trainer", "--config", str(config), "--data",
                str(tmp_path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert str(config) in last and "TrainConfig.lr must be float" in last, done.stderr
