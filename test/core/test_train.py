"""Trainer: masked recipe loss, a short lite run, exact resume, DDP on CPU with gloo, the CLI."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from dualtalk_core import config as config_io
from dualtalk_core import metrics
from dualtalk_core.data import ConversationDataset
from dualtalk_core.model import DualTalkModel
from dualtalk_core.rigs import get_rig
from dualtalk_core.train import TrainConfig, init_output_head, main, motion_loss, train
from corpora import write_corpus  # test/core helper

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


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


def test_loss_ignores_padding_and_weights_groups() -> None:
    rig = get_rig("arkit52")
    target = torch.randn(2, 6, 55)
    pred = target.clone()
    pred[1, 4:] += 100.0  # garbage on padded frames only
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    loss, parts = motion_loss(pred, target, mask, rig, TrainConfig())
    assert float(loss) == 0.0
    pred = target + 0.1
    pred[:, :, rig.group_index("JAW")] += 0.1  # jaw error 0.2, velocity error 0
    cfg = TrainConfig(weight_jaw=2.0)
    loss, parts = motion_loss(pred, target, mask, rig, cfg)
    assert parts["exp"].item() == pytest.approx(0.01)
    assert parts["jaw"].item() == pytest.approx(0.04)
    assert parts["velocity"].item() == pytest.approx(0.0, abs=1e-10)
    assert loss.item() == pytest.approx(0.01 + 2 * 0.04 + 0.01)


def test_window_mean_weight_scales_only_the_offset_share_of_the_error() -> None:
    rig = get_rig("arkit52")
    target = torch.randn(2, 8, 55, dtype=torch.float64)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 6:] = False
    exp = rig.group_index("EXP")
    pred = target.clone()
    pred[..., exp] += 0.3  # one offset over each window
    pred[1, 6:] += 50.0  # padding
    wiggle = target.clone()
    wiggle[:, 0::2, exp] += 0.2  # +-0.2 around the truth: no window-mean error
    wiggle[:, 1::2, exp] -= 0.2
    wiggle[1, 6:] += 50.0
    for w in (1.0, 0.25):
        cfg = TrainConfig(weight_window_mean=w)
        assert motion_loss(pred, target, mask, rig, cfg)[1]["exp"].item() == \
            pytest.approx(w * 0.09)
        assert motion_loss(wiggle, target, mask, rig, cfg)[1]["exp"].item() == \
            pytest.approx(0.04)
    noisy = target + torch.randn_like(target)
    plain = ((noisy - target)[..., exp].square() * mask.unsqueeze(-1)).sum() / (14 * len(exp))
    assert motion_loss(noisy, target, mask, rig, TrainConfig())[1]["exp"].item() == \
        pytest.approx(plain.item())
    with pytest.raises(ValueError, match="weight_window_mean"):
        TrainConfig(weight_window_mean=0.0)


def test_dispersion_term_measures_the_spread_of_real_frames_only() -> None:
    rig = get_rig("arkit52")
    target = torch.randn(2, 40, 55, dtype=torch.float64)
    target[1, 30:] = 0.0  # padding of the second window
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 30:] = False
    cfg = TrainConfig(weight_pose=10.0, weight_dispersion=2.0)
    shifted = target + 0.3  # right spread, wrong level: MSE only
    shifted[1, 30:] = 50.0
    _, parts = motion_loss(shifted, target, mask, rig, cfg)
    assert parts["dispersion"].item() == pytest.approx(0.0, abs=1e-6)
    flat = torch.zeros_like(target)  # no spread at all: the error is the true spread
    loss, parts = motion_loss(flat, target, mask, rig, cfg)
    std = torch.stack([target[0].std(dim=0, unbiased=False),
                       target[1, :30].std(dim=0, unbiased=False)])  # (B, C)
    want = sum(w * std[:, rig.group_index(g)].square().mean().item()
               for g, w in (("EXP", 1.0), ("JAW", 1.0), ("POSE", 10.0)))
    assert parts["dispersion"].item() == pytest.approx(want, rel=1e-3)
    recipe = sum(w * parts[k].item() for k, w in
                 (("exp", 1.0), ("jaw", 1.0), ("pose", 10.0), ("velocity", 1.0)))
    assert loss.item() == pytest.approx(recipe + 2.0 * parts["dispersion"].item(), rel=1e-9)
    assert TrainConfig().weight_dispersion == 0.0  # the published recipe has no such term


def test_frechet_term_is_the_covariance_part_of_metrics_fd_on_real_frames() -> None:
    rig = get_rig("arkit52")
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(2, 60, 55, generator=gen, dtype=torch.float64)
    target[:, :, 3] = target[:, :, 2]  # a left/right pair: repeated eigenvalues
    target[:, :, 10:20] = 0.0  # channels that do not move: a singular covariance
    target[1, 45:] = 0.0  # padding of the second window
    mask = torch.ones(2, 60, dtype=torch.bool)
    mask[1, 45:] = False
    pred = (0.5 * target + 0.2 * torch.randn(2, 60, 55, generator=gen, dtype=torch.float64))
    pred[1, 45:] = 50.0
    pred.requires_grad_(True)
    cfg = TrainConfig(weight_pose=10.0, weight_frechet=3.0)
    loss, parts = motion_loss(pred, target, mask, rig, cfg)
    want = 0.0
    for g, w in (("EXP", 1.0), ("JAW", 1.0), ("POSE", 10.0)):
        idx = rig.group_index(g)
        spread = [metrics.fd(p[:n, idx], t[:n, idx]) - metrics.fd_offset(p[:n, idx], t[:n, idx])
                  for p, t, n in zip(pred.detach().numpy(), target.numpy(), (60, 45))]
        want += w * float(np.mean(spread)) / len(idx)
    assert parts["frechet"].item() == pytest.approx(want, rel=1e-4)
    recipe = sum(w * parts[k].item() for k, w in
                 (("exp", 1.0), ("jaw", 1.0), ("pose", 10.0), ("velocity", 1.0)))
    assert loss.item() == pytest.approx(recipe + 3.0 * parts["frechet"].item(), rel=1e-9)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[1, 45:].abs().max().item() == 0.0  # padding takes no gradient
    _, parts = motion_loss(target + 0.3, target, mask, rig, cfg)  # right covariance
    assert parts["frechet"].item() == pytest.approx(0.0, abs=1e-6)
    assert TrainConfig().weight_frechet == 0.0  # the published recipe has no such term


def test_audio_augmentation_touches_real_samples_only_and_repeats_per_seed(corpus: Path) -> None:
    from dualtalk_core.data import collate_windows
    from dualtalk_core.train import _augment_batch
    ds = ConversationDataset(corpus, "train", window_frames=50)
    items = [ds[i] for i in range(len(ds)) if len(ds[i]["target"]) < 50][:1] + [ds[0]]
    batch = collate_windows(items)
    short = int(batch["lengths"][0]) * 640
    runs = []
    for _ in range(2):
        copy = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
        _augment_batch(copy, np.random.default_rng([0, 1, 2]))
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
    result = train(tiny_config(epochs=1, batch_size=2), corpus, out)
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


def test_cli_and_shipped_config(corpus: Path, tmp_path: Path) -> None:
    shipped = config_io.load(TrainConfig, REPO / "config" / "train_lite.yaml")
    assert shipped.model_preset == "lite" and shipped.val_split == "val"
    assert shipped.init_head_from_data and not TrainConfig().init_head_from_data  # published: off
    # The shipped model's recorded configs are the two stages' files (stage 1 ran as seed 2).
    model_dir = REPO / "dualtalk_core" / "models" / "default"
    stage1 = config_io.load(TrainConfig, model_dir / "stage1_train_config.yaml")
    assert stage1 == dataclasses.replace(shipped, seed=2)
    stage2 = config_io.load(TrainConfig, REPO / "config" / "finetune_lite.yaml")
    assert stage2 == config_io.load(TrainConfig, model_dir / "train_config.yaml")
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
