"""dualtalk-sweep: several seeds trained side by side, each scored, the spread summarised."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dualtalk_core import config_files as config_io
from dualtalk_core.training import sweep
from dualtalk_core.training.train_config import TrainConfig
from corpora import write_corpus  # test/core helper


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"),
                        {"train": [("a", 60), ("b", 50)], "val": [("c", 40)],
                         "test": [("c", 45)], "ood": [("c", 40)]})


@pytest.mark.slow  # trains real models: ~20 s
def test_two_seeds_trained_scored_and_summarised(corpus: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(model_overrides={"feature_dim": 16, "audio_hidden_dim": 16, "ff_dim": 32,
                                       "n_mels": 16, "n_interaction_layers": 1,
                                       "lstm_layers": 1},
                      val_split="val", window_frames=25, batch_size=4, epochs=1, lr=3e-3,
                      device="cpu", log_every_steps=1)
    config_io.save(cfg, tmp_path / "tiny.yaml")
    out = tmp_path / "sweep"
    args = ["--config", str(tmp_path / "tiny.yaml"), "--data", str(corpus), "--out", str(out),
            "--seeds", "3", "4", "--jobs", "2"]
    assert sweep.main(args) == 0
    for seed in (3, 4):
        resolved = config_io.load(TrainConfig, out / f"seed{seed}" / "train_config.yaml")
        assert resolved.seed == seed
        assert (out / f"seed{seed}" / "eval_ood" / "table.md").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"test", "ood"}
    fd = summary["ood"]["cells"]["FD EXP"]
    assert len(fd["per_seed"]) == 2 and fd["per_seed"][0] != fd["per_seed"][1]  # seeds differ
    assert fd["min"] <= fd["mean"] <= fd["max"] and fd["sd"] > 0
    assert set(fd["baselines"]) == {"speaker_only", "random", "nearest_motion", "mirror"}
    ablated = [json.loads((out / f"seed{s}" / "eval_ood" / "metrics.json").read_text())
               ["methods"]["speaker_only"]["groups"]["EXP"]["FD"] for s in (3, 4)]
    assert fd["baselines"]["speaker_only"] == pytest.approx(np.mean(ablated))  # per seed
    assert summary["ood"]["seeds_ahead"]["mirror MSE JAW"] in (0, 1, 2)
    text = (out / "summary.md").read_text()
    assert "### ood (seeds 3, 4)" in text and "of 2 seeds" in text
    logs = {s: (out / f"seed{s}" / "train.log").stat().st_size for s in (3, 4)}
    assert sweep.main(args) == 0  # finished runs are scored again, not retrained
    assert logs == {s: (out / f"seed{s}" / "train.log").stat().st_size for s in (3, 4)}


def test_a_failed_training_is_reported(corpus: Path, tmp_path: Path) -> None:
    config_io.save(TrainConfig(val_split="nope", epochs=1, device="cpu"), tmp_path / "bad.yaml")
    assert sweep.main(["--config", str(tmp_path / "bad.yaml"), "--data", str(corpus),
                       "--out", str(tmp_path / "s"), "--seeds", "0"]) == 2
    assert "nope" in (tmp_path / "s" / "seed0" / "train.log").read_text()


@pytest.mark.slow  # trains real models: ~20 s
def test_stopping_the_sweep_stops_its_trainings(corpus: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(model_overrides={"feature_dim": 16, "audio_hidden_dim": 16, "ff_dim": 32,
                                       "n_mels": 16, "n_interaction_layers": 1,
                                       "lstm_layers": 1},
                      val_split="val", window_frames=25, batch_size=4, epochs=100000,
                      device="cpu")
    config_io.save(cfg, tmp_path / "long.yaml")
    out = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "dualtalk_core.training.sweep", "--config",
                             str(tmp_path / "long.yaml"), "--data", str(corpus), "--out",
                             str(out), "--seeds", "0", "1", "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 60.0
    children: list[int] = []
    while len(children) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        children = [int(p) for p in children_file.read_text().split()]
    assert len(children) == 2, "the sweep did not start two trainings"
    while not all((out / f"seed{s}" / "history.jsonl").is_file() for s in (0, 1)):
        assert time.monotonic() < deadline, "no training finished an epoch"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=30)
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    finally:  # never leave a 100000-epoch training behind, whatever failed
        proc.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "stopping its training" in output
    assert not alive, f"trainings {alive} outlived the sweep"
