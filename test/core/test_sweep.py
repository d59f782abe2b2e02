"""dualtalk-sweep: several seeds trained side by side, each scored, the spread summarised."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dualtalk_core import config as config_io
from dualtalk_core import sweep
from dualtalk_core.train import TrainConfig
from corpora import write_corpus  # test/core helper


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"),
                        {"train": [("a", 60), ("b", 50)], "val": [("c", 40)],
                         "test": [("c", 45)], "ood": [("c", 40)]})


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
