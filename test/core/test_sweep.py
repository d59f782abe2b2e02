"""dualtalk-sweep: several seeds trained side by side, each scored, the spread summarised."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from dualtalk_core import config as config_io
from dualtalk_core import sweep
from dualtalk_core.rigs import get_rig
from dualtalk_core.train import TrainConfig

RIG = get_rig("arkit52")
SPLITS = {"train": (60, 50), "val": (40,), "test": (45,), "ood": (40,)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every split of the synth layout; jawOpen follows the speaker's audio level."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for split, lengths in SPLITS.items():
        (root / split).mkdir()
        for i, frames in enumerate(lengths):
            for speaker in (1, 2):
                level = np.clip(np.sin(np.arange(frames) / (3.0 + speaker + i)), 0, None)
                audio = rng.normal(size=(frames, 640)) * level[:, None] * 0.2
                wavfile.write(root / split / f"c{i}_speaker{speaker}.wav", 16000,
                              (audio.ravel() * 32767).astype(np.int16))
                motion = np.clip(rng.normal(0.2, 0.05, (frames, RIG.dim)), 0, 1)
                motion[:, RIG.names.index("jawOpen")] = level
                np.savez(root / split / f"c{i}_speaker{speaker}.npz",
                         coeffs=motion.astype(np.float32), names=np.array(RIG.names))
    return root


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
