"""Trainer: the two-run step loss, augmentation, a short lite run, exact resume, DDP on CPU with
gloo, the CLI and the shipped configs."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from dualtalk_core import config_files as config_io
from dualtalk_core.dataset.windows import ConversationDataset
from dualtalk_core.model import DualTalkModel
from dualtalk_core.rigs import get_rig
from dualtalk_core.training.losses import head_gap_losses, motion_loss
from dualtalk_core.training.train_config import TrainConfig, front_end
from dualtalk_core.training.trainer import init_output_head, main, train
from corpora import write_corpus  # test/core helper

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"),
                        {"train": [("a", 60), ("b", 45)], "test": [("c", 30)]})


def tiny_config(**changes: object) -> TrainConfig:
    base = TrainConfig(model_overrides={"feature_dim": 16, "audio_hidden_dim": 16, "ff_dim": 32,
                                        "n_mels": 16, "n_interaction_layers": 1,
                                        "lstm_layers": 1, "device": "cpu"},
                       window_frames=25, batch_size=4, epochs=2, lr=3e-3, device="cpu",
                       log_every_steps=1)
    return dataclasses.replace(base, **changes)


def _two_runs(corpus: Path, cfg: TrainConfig) -> tuple[Any, ...]:
    """A random tiny model in eval mode on 4 windows: `_step_loss`'s (loss, parts, mask), the
    batch, and the model's output with the partner and with it dropped, computed by hand."""
    from dualtalk_core.training.augment import drop_partner
    from dualtalk_core.dataset.windows import collate_windows
    from dualtalk_core.training.trainer import _step_loss
    rig = get_rig("arkit52")
    model = DualTalkModel.from_preset("lite", **cfg.model_overrides).eval()
    ds = ConversationDataset(corpus, "train", window_frames=25)
    batch = collate_windows([ds[i] for i in range(4)])
    with torch.no_grad():
        loss, parts, mask = _step_loss(model, batch, rig, cfg, torch.device("cpu"),
                                       rig.neutral_array())
        audio, motion = drop_partner(batch["partner_audio"], batch["partner_motion"], 1.0,
                                     np.random.default_rng(9), rig.neutral_array())
        together = model(batch["self_audio"], batch["partner_audio"], batch["partner_motion"])
        alone = model(batch["self_audio"], audio, motion)
    return loss, parts, mask, batch, together, alone


def test_head_gap_terms_compare_a_run_without_the_partner(
        corpus: Path, tmp_path: Path) -> None:
    rig = get_rig("arkit52")
    cfg = tiny_config(weight_head_level=5.0, weight_head_motion=2.0)
    loss, parts, mask, batch, together, alone = _two_runs(corpus, cfg)
    level, motion_gap = head_gap_losses(together, alone, mask, rig)
    plain = motion_loss(together, batch["target"], mask, rig, cfg, batch["partner_motion"])[0]
    assert parts["head_level"].item() == pytest.approx(level.item(), rel=1e-5)
    assert parts["head_motion"].item() == pytest.approx(motion_gap.item(), rel=1e-5)
    assert level.item() > 0 and motion_gap.item() > 0  # a random network's head follows
    assert loss.item() == pytest.approx(plain.item() + 5.0 * level.item()
                                        + 2.0 * motion_gap.item(), rel=1e-5)
    # Fine-tuning with the term brings the partnerless head level to the partnered one; val
    # reports the gap whatever the weight.
    start = train(tiny_config(epochs=3), corpus, tmp_path / "start").model
    start.save(tmp_path / "start_model")
    tune = tiny_config(epochs=3, lr=1e-3, init_from=str(tmp_path / "start_model"),
                       partner_dropout=0.3, val_split="train")
    gaps = [train(dataclasses.replace(tune, weight_head_level=w), corpus,
                  tmp_path / f"w{w}").history[-1]["val"]["head_level"] for w in (0.0, 2000.0)]
    assert gaps[0] > 0 and gaps[1] < 0.5 * gaps[0]


def test_a_misnamed_tied_head_channel_fails_before_training(corpus: Path,
                                                            tmp_path: Path) -> None:
    cfg = tiny_config(weight_head_motion=1.0, head_motion_channels=["headTurn"])
    with pytest.raises(ValueError, match="headTurn"):
        train(cfg, corpus, tmp_path / "out")
    assert not (tmp_path / "out" / "last").exists()


def test_head_spread_can_be_asked_of_the_run_without_the_partner(corpus: Path) -> None:
    rig = get_rig("arkit52")
    cfg = tiny_config(weight_dispersion=2.0, weight_frechet=3.0, frechet_with_partner=True,
                      spread_groups=["EXP", "JAW"], spread_groups_without_partner=["POSE"])
    loss, parts, mask, batch, together, alone = _two_runs(corpus, cfg)
    face = motion_loss(together, batch["target"], mask, rig, cfg, batch["partner_motion"])
    head = motion_loss(alone, batch["target"], mask, rig, dataclasses.replace(
        cfg, spread_groups=["POSE"], spread_groups_without_partner=[],
        frechet_with_partner=False))[1]  # a dropped partner is a still face
    for name in ("dispersion", "frechet"):
        assert parts[name].item() == pytest.approx(face[1][name].item() + head[name].item(),
                                                   rel=1e-5)
    assert head["dispersion"].item() > 0 and head["frechet"].item() > 0
    assert loss.item() == pytest.approx(face[0].item() + 2.0 * head["dispersion"].item()
                                        + 3.0 * head["frechet"].item(), rel=1e-5)
    with pytest.raises(ValueError, match="spread_groups"):
        TrainConfig(spread_groups_without_partner=["HEAD"])


def test_audio_augmentation_touches_real_samples_only_and_repeats_per_seed(corpus: Path) -> None:
    from dualtalk_core.dataset.windows import collate_windows
    from dualtalk_core.training.augment import augment_batch
    ds = ConversationDataset(corpus, "train", window_frames=50)
    items = [ds[i] for i in range(len(ds)) if len(ds[i]["target"]) < 50][:1] + [ds[0]]
    batch = collate_windows(items)
    short = int(batch["lengths"][0]) * 640
    runs = []
    for _ in range(2):
        copy = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
        augment_batch(copy, np.random.default_rng([0, 1, 2]))
        runs.append(copy)
    for key in ("self_audio", "partner_audio"):
        assert torch.equal(runs[0][key], runs[1][key])
        assert not torch.equal(runs[0][key][:, :short], batch[key][:, :short])
        assert torch.count_nonzero(runs[0][key][0, short:]) == 0  # padding stays silent
    assert torch.equal(runs[0]["target"], batch["target"])  # motion is never touched


def test_partner_dropout_is_seeded_and_changes_what_the_model_sees(
        corpus: Path, tmp_path: Path) -> None:
    cfg = tiny_config(epochs=1, partner_dropout=0.5)
    runs = [train(c, corpus, tmp_path / name).model.state_dict()
            for name, c in (("a", cfg), ("b", cfg), ("off", tiny_config(epochs=1)))]
    assert all(torch.equal(v, runs[1][k]) for k, v in runs[0].items())
    assert not all(torch.equal(v, runs[2][k]) for k, v in runs[0].items())
    assert TrainConfig().partner_dropout == 0.0  # not in the published recipe
    with pytest.raises(ValueError, match="partner_dropout"):
        TrainConfig(partner_dropout=-0.1)


def test_output_head_starts_at_the_mean_target(corpus: Path) -> None:
    ds = ConversationDataset(corpus, "train")
    model = DualTalkModel.from_preset("lite", **tiny_config().model_overrides).eval()
    init_output_head(model, ds)
    mean = np.concatenate([m for n in ds.clip_names for m in ds.clip(n).motion]).mean(axis=0)
    item = ds[0]
    with torch.no_grad():
        out = model(item["self_audio"][None], item["partner_audio"][None],
                    item["partner_motion"][None])
    np.testing.assert_allclose(out[0].numpy(), np.broadcast_to(mean, out[0].shape), atol=1e-6)


def test_short_lite_run_lowers_loss_and_writes_checkpoints(corpus: Path, tmp_path: Path) -> None:
    result = train(tiny_config(epochs=4), corpus, tmp_path / "out")
    losses = [r["train"]["loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.history[-1]["val"]["loss"] < result.history[0]["val"]["loss"]
    for name in ("best", "last"):
        model = DualTalkModel.load(tmp_path / "out" / name)
        assert model.config.rig == "arkit52" and model.config.feature_dim == 16
    assert len((tmp_path / "out" / "history.jsonl").read_text().splitlines()) == 4
    assert list((tmp_path / "out" / "tb").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config(), corpus, tmp_path / "out")


def test_resume_repeats_an_uninterrupted_run(corpus: Path, tmp_path: Path) -> None:
    cfg = tiny_config(lr_step_epochs=1, lr_gamma=0.5)
    with pytest.raises(ValueError, match="cannot resume"):
        train(cfg, corpus, tmp_path / "b", resume=True)
    full = train(cfg, corpus, tmp_path / "a")
    first = train(dataclasses.replace(cfg, epochs=1), corpus, tmp_path / "b")
    resumed = train(cfg, corpus, tmp_path / "b", resume=True)
    assert [r["epoch"] for r in first.history + resumed.history] == [1, 2]
    assert resumed.history[0]["lr"] == pytest.approx(cfg.lr * 0.5)  # scheduler state restored
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, port: int, corpus: str, out: str) -> None:
    """One torchrun-like process: env rendezvous, train, save this rank's final weights."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")
    # The head-level term runs the network twice before one backward: DDP must still agree.
    result = train(tiny_config(epochs=1, batch_size=2, weight_head_level=1.0), corpus, out)
    weights = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    save_file(weights, str(Path(out).parent / f"rank{rank}.safetensors"))


@pytest.mark.timeout(180)
def test_ddp_two_cpu_processes_agree(corpus: Path, tmp_path: Path) -> None:
    # fork, not spawn: spawn re-imports torch in each child (~20 s on 2 shared cores).
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_ddp_worker, args=(_free_port(), str(corpus), str(tmp_path / "out")),
                       nprocs=2, start_method=method)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    saved = load_file(str(tmp_path / "out" / "last" / "model.safetensors"))
    for key, value in saved.items():
        assert torch.equal(value, ranks[0][key]) and torch.equal(value, ranks[1][key]), key
    history = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").open()]
    assert [r["epoch"] for r in history] == [1]  # rank 0 only writes
    assert history[0]["train"]["head_level"] > 0


def test_cli_and_shipped_config(corpus: Path, tmp_path: Path) -> None:
    shipped = config_io.load(TrainConfig, REPO / "config" / "train_lite.yaml")
    assert shipped.model_preset == "lite" and shipped.val_split == "val"
    assert shipped.init_head_from_data and not TrainConfig().init_head_from_data  # published: off
    # The shipped model's recorded configs are the two stages' files (stage 1 ran as seed 2).
    model_dir = REPO / "dualtalk_core" / "models" / "default"
    stage1 = config_io.load(TrainConfig, model_dir / "stage1_train_config.yaml")
    assert stage1 == dataclasses.replace(shipped, seed=2)
    stage2 = config_io.load(TrainConfig, REPO / "config" / "finetune_lite.yaml")
    recorded = config_io.load(TrainConfig, model_dir / "train_config.yaml")
    # init_from names the folder stage 1 was written to on the machine that trained it
    unplaced = [dataclasses.replace(c, init_from=None) for c in (stage2, recorded)]
    assert unplaced[0] == unplaced[1]
    assert recorded.init_from and Path(recorded.init_from).name == "best"
    assert stage2.weight_frechet > 0 and stage2.partner_dropout > 0 and stage2.init_from
    cfg_path = tmp_path / "tiny.yaml"
    config_io.save(tiny_config(epochs=5), cfg_path)
    args = ["--config", str(cfg_path), "--data", str(corpus), "--out", str(tmp_path / "o")]
    assert main(args + ["--epochs", "1"]) == 0
    with open(tmp_path / "o" / "history.jsonl", "a") as f:  # an epoch lost in a crash
        f.write(json.dumps({"epoch": 2, "lost": True}) + "\n")
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    history = [json.loads(line) for line in (tmp_path / "o" / "history.jsonl").open()]
    assert [r["epoch"] for r in history] == [1, 2] and "lost" not in history[1]
    config_io.save(tiny_config(epochs=1, seed=5), tmp_path / "seeded.yaml")
    assert main(["--config", str(tmp_path / "seeded.yaml"), "--data", str(corpus),
                 "--out", str(tmp_path / "s"), "--seed", "0"]) == 0  # 0 overrides too
    assert config_io.load(TrainConfig, tmp_path / "s" / "train_config.yaml").seed == 0
    with pytest.raises(SystemExit):
        main(["--config", str(cfg_path), "--data", str(tmp_path / "none"),
              "--out", str(tmp_path / "x")])


def test_the_front_end_decides_how_the_audio_is_prepared(tmp_path):
    """wav2vec2 trains on whole-file normalised audio (the release), log-mel on raw audio."""
    assert front_end(TrainConfig()) == "logmel"
    assert front_end(TrainConfig(model_preset="official")) == "wav2vec2"
    folder = DualTalkModel.from_preset("lite", device="cpu").save(tmp_path / "lite")
    assert front_end(TrainConfig(model_preset="official", init_from=str(folder))) == "logmel"
    torch.save({}, tmp_path / "DualTalk.pth")  # a bare .pth is the published network
    assert front_end(TrainConfig(init_from=str(tmp_path / "DualTalk.pth"))) == "wav2vec2"
    assert front_end(TrainConfig(), resume_dir=folder) == "logmel"
