"""Train a DualTalk model with the published recipe, on one device or many through torchrun.

    dualtalk-train --config config/train_lite.yaml --data DATA --out OUT [--resume]
    torchrun --nproc_per_node 4 -m dualtalk_core.training.trainer --config ... --data ... --out ...

Recipe (the published release's, in docs/DESIGN.md section 9): loss = MSE(EXP) + MSE(JAW) +
MSE(POSE) + MSE of first differences over all channels, on windows of 200 frames; Adam, StepLR
every 50 epochs. Padded frames of a batch are masked out of every term (see
`dualtalk_core.dataset.windows` for the batch design).

OUT/last and OUT/best are `model.save` folders (model.safetensors + config.json); OUT/last also
holds train_state.safetensors (optimizer, scheduler, epoch) for --resume. OUT/tb holds TensorBoard
logs, OUT/history.jsonl one line per epoch, OUT/train_config.yaml the config used.
Under torchrun, `batch_size` is per process; only rank 0 logs and saves.

This module is the loop: epochs, steps, validation and the CLI. The settings are
`train_config.TrainConfig`, the loss `losses`, the checkpoints `train_state` and the process
group `distributed`.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from dualtalk_core import config_files as config_io
from dualtalk_core.dataset.windows import ConversationDataset, collate_windows
from dualtalk_core.model import DualTalkModel
from dualtalk_core.rigs import GROUPS, Rig, get_rig
from dualtalk_core.training.augment import augment_batch, drop_partner, hide_partner_face
from dualtalk_core.training.distributed import (Placement, all_reduce_sum, barrier,
                                                close_distributed, current_rank,
                                                init_distributed, wrap_model)
from dualtalk_core.training.losses import (PARTS, head_channel_columns, head_gap_losses,
                                           motion_loss, spread_channels)
from dualtalk_core.training.train_config import TrainConfig, front_end
from dualtalk_core.training.train_state import (STATE_NAME, load_train_state, open_run_logs,
                                                save_checkpoint, write_epoch)

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: DualTalkModel  # the trained weights (the last epoch's), on every rank
    history: list[dict[str, Any]]  # per epoch: epoch, lr, train {part: loss}, val or None
    best_val_loss: float


@dataclass(frozen=True)
class EpochSetup:
    """What every training epoch of one run steps with; built once by `train`."""

    net: nn.Module  # the model, DDP-wrapped under torchrun
    loader: DataLoader  # training windows, this rank's shard, reshuffled per epoch
    optimizer: torch.optim.Optimizer
    rig: Rig
    cfg: TrainConfig
    device: torch.device
    world: int = 1  # processes: the epoch's losses are reduced over all of them
    writer: Any = None  # rank 0's SummaryWriter; None: no step scalars, no progress bar


def train(cfg: TrainConfig, data_dir: str | Path, out_dir: str | Path,
          resume: bool = False) -> TrainResult:
    """Run or resume training (under torchrun: on every rank); see the module docstring."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    last = out_dir / "last"
    if resume and not (last / STATE_NAME).is_file():
        raise ValueError(f"cannot resume: {last / STATE_NAME} not found; train without --resume")
    if not resume and last.exists():
        raise ValueError(f"{out_dir} already holds a run; pass --resume or choose another --out")
    place = init_distributed(cfg.device)
    try:
        return _train(cfg, data_dir, out_dir, resume, place)
    finally:
        close_distributed(place)


def _train(cfg: TrainConfig, data_dir: Path, out_dir: Path, resume: bool,
           place: Placement) -> TrainResult:
    """The epochs after the last saved one: train, validate when due, log and save on rank 0."""
    setup, model, scheduler, val_loader, meta = _build_run(cfg, data_dir, out_dir, resume,
                                                           place)
    history = []
    for epoch in range(meta["epoch"] + 1, cfg.epochs + 1):
        record = _train_one_epoch(setup, scheduler, meta, epoch, place.rank)
        due = epoch % cfg.eval_every_epochs == 0 or epoch == cfg.epochs
        if due and val_loader is not None:
            record["val"] = validate(model, val_loader, setup.rig, cfg, place.device,
                                     place.world)
        improved = record["val"] is not None and record["val"]["loss"] < meta["best_val_loss"]
        meta.update(epoch=epoch, best_val_loss=record["val"]["loss"] if improved
                    else meta["best_val_loss"])
        history.append(record)
        if place.rank == 0:
            _report(record, setup.writer, out_dir, cfg.epochs, improved)
            if improved:
                save_checkpoint(out_dir, "best", model)
            if due:
                save_checkpoint(out_dir, "last", model, (setup.optimizer, scheduler, meta))
    if setup.writer is not None:
        setup.writer.close()
    barrier(place.world)  # no rank leaves (and tears the group down) before rank 0 has saved
    return TrainResult(model, history, meta["best_val_loss"])


def _build_run(cfg: TrainConfig, data_dir: Path, out_dir: Path, resume: bool, place: Placement
               ) -> tuple[EpochSetup, DualTalkModel, Any, DataLoader | None, dict[str, Any]]:
    """Loaders, model, optimizer, scheduler, meta and (rank 0) logs, fresh or resumed; the
    model is returned unwrapped too, for validation and checkpoints."""
    main = place.rank == 0
    train_ds, train_loader, val_loader = _loaders(cfg, data_dir, place.rank, place.world,
                                                  place.device.type == "cuda",
                                                  out_dir / "last" if resume else None)
    rig = get_rig(train_ds.rig)
    # Misnamed channels fail here, before the first epoch, rather than at the first step
    # (any group will do: spread_channels checks the names against the whole rig).
    if cfg.head_motion_channels is not None:
        head_channel_columns(rig, cfg.head_motion_channels)
    spread_channels(rig, GROUPS[0], cfg.spread_skip_channels)
    model, optimizer, scheduler, meta = _setup(cfg, rig.name, out_dir, resume, place.device)
    if cfg.init_head_from_data and not resume and not cfg.init_from:
        init_output_head(model, train_ds)  # every rank: the same data, the same values
    net = wrap_model(model, place, cfg.find_unused_parameters)
    writer = open_run_logs(cfg, out_dir, meta["epoch"]) if main else None
    if main:
        logger.info("training on %s (%s, %d windows, %d parameters), %s x%d, from epoch %d",
                    data_dir, rig.name, len(train_ds), sum(p.numel() for p in model.parameters()),
                    place.device, place.world, meta["epoch"] + 1)
    setup = EpochSetup(net, train_loader, optimizer, rig, cfg, place.device, place.world, writer)
    return setup, model, scheduler, val_loader, meta


def _train_one_epoch(setup: EpochSetup, scheduler: Any, meta: dict[str, Any], epoch: int,
                     rank: int) -> dict[str, Any]:
    """Seed, train one epoch, step the scheduler; the epoch's history record (val None).
    Advances meta["step"]."""
    # Randomness (dropout; numpy: wav2vec2's SpecAugment) seeded per (epoch, rank): a resumed
    # run repeats an uninterrupted one exactly without saving RNG states.
    torch.manual_seed(setup.cfg.seed + 10_000 * epoch + rank)
    np.random.seed((setup.cfg.seed + 10_000 * epoch + rank) % 2**32)
    setup.loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
    lr, started = setup.optimizer.param_groups[0]["lr"], time.perf_counter()
    train_parts, meta["step"] = train_epoch(setup, epoch, meta["step"])
    scheduler.step()
    return {"epoch": epoch, "lr": lr, "seconds": round(time.perf_counter() - started, 3),
            "train": train_parts, "val": None}


def train_epoch(setup: EpochSetup, epoch: int, step: int) -> tuple[dict[str, float], int]:
    """One pass over `setup.loader` from global step `step`; returns frame-weighted mean losses
    (all ranks) and the step reached."""
    cfg, net = setup.cfg, setup.net
    net.train()
    sums = torch.zeros(len(PARTS) + 2, dtype=torch.float64)
    bar = tqdm(setup.loader, desc=f"epoch {epoch}", leave=False, disable=setup.writer is None)
    rank = current_rank()
    neutral = setup.rig.neutral_array()  # what a dropped partner's face becomes
    for batch in bar:
        if cfg.audio_augment:
            augment_batch(batch, np.random.default_rng([cfg.seed, epoch, step, rank]))
        if cfg.partner_dropout > 0.0:  # a generator stream of its own, apart from the audio's
            batch["partner_audio"], batch["partner_motion"] = drop_partner(
                batch["partner_audio"], batch["partner_motion"], cfg.partner_dropout,
                np.random.default_rng([cfg.seed, epoch, step, rank, 2]), neutral)
        if cfg.partner_face_dropout > 0.0:
            batch["partner_motion"] = hide_partner_face(
                batch["partner_motion"], cfg.partner_face_dropout,
                np.random.default_rng([cfg.seed, epoch, step, rank, 3]), neutral)
        loss, parts, mask = _step_loss(net, batch, setup.rig, cfg, setup.device, neutral)
        setup.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip_norm)
        setup.optimizer.step()
        step += 1
        _accumulate(sums, loss, parts, mask)
        if setup.writer is not None and step % cfg.log_every_steps == 0:
            setup.writer.add_scalar("train_step/loss", loss.item(), step)
            bar.set_postfix(loss=f"{loss.item():.4g}")
    return _as_parts(all_reduce_sum(sums, setup.world)), step


def _step_loss(model: nn.Module, batch: dict[str, Any], rig: Rig, cfg: TrainConfig,
               device: torch.device, neutral: np.ndarray, measure_head_gap: bool = False
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Loss, its parts and the (B, T) mask of one batch as given (partner dropout already
    applied). The head-gap terms and `spread_groups_without_partner` need a second run with
    every partner dropped; `measure_head_gap` runs it whatever the weights, so that validation
    always reports how far the head moves when the partner drops."""
    second_run = (cfg.weight_head_level > 0 or cfg.weight_head_motion > 0
                  or bool(cfg.spread_groups_without_partner) or measure_head_gap)
    # With a second run, the first runs on a forked RNG, so that the second draws the same
    # dropout masks: the gap between them is then the partner's doing alone.
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices) if second_run else contextlib.nullcontext():
        pred = _forward(model, batch, device, cfg.autocast_bf16)
    mask = batch["mask"].to(device)
    target = batch["target"].to(device)
    partner = batch["partner_motion"].to(device)
    loss, parts = motion_loss(pred, target, mask, rig, cfg, partner)
    parts["head_level"] = parts["head_motion"] = pred.new_zeros(())
    if second_run:
        silent, still = drop_partner(batch["partner_audio"], batch["partner_motion"], 1.0,
                                     np.random.default_rng(0), neutral)
        alone = _forward(model, {**batch, "partner_audio": silent, "partner_motion": still},
                         device, cfg.autocast_bf16)
        parts["head_level"], parts["head_motion"] = head_gap_losses(
            pred, alone, mask, rig, cfg.head_motion_channels)
        loss = (loss + cfg.weight_head_level * parts["head_level"]
                + cfg.weight_head_motion * parts["head_motion"])
        if cfg.spread_groups_without_partner:
            solo = dataclasses.replace(cfg, spread_groups=cfg.spread_groups_without_partner,
                                       spread_groups_without_partner=[],
                                       frechet_with_partner=False)  # the partner is still
            _, extra = motion_loss(alone, target, mask, rig, solo)
            for name, weight in (("dispersion", cfg.weight_dispersion),
                                 ("frechet", cfg.weight_frechet)):
                parts[name] = parts[name] + extra[name]
                loss = loss + weight * extra[name]
    return loss, parts, mask


def _forward(model: nn.Module, batch: dict[str, Any], device: torch.device,
             bf16: bool = False) -> torch.Tensor:
    """(B, 640 T) audio x2 + (B, T, C) partner motion -> (B, T, C) float32 predicted motion.

    T is the window's frame count, given explicitly: the wav2vec2 front end's own rule (the
    release's float ceil) would give T + 1 for some window lengths."""
    with torch.autocast(device.type, torch.bfloat16, enabled=bf16 and device.type == "cuda"):
        pred = model(batch["self_audio"].to(device, non_blocking=True),
                     batch["partner_audio"].to(device, non_blocking=True),
                     batch["partner_motion"].to(device, non_blocking=True),
                     n_frames=batch["target"].shape[1]).float()
    if pred.shape != batch["target"].shape:
        raise ValueError(f"model output {tuple(pred.shape)} does not match the target "
                         f"{tuple(batch['target'].shape)}: expected (B, ceil(N/640), C)")
    return pred


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, rig: Rig, cfg: TrainConfig,
             device: torch.device, world: int = 1) -> dict[str, float]:
    """Frame-weighted mean validation losses over all ranks' shards (the training loss and its
    parts, head gaps included); not the paper's metrics, which `dualtalk-eval` computes."""
    model.eval()
    sums = torch.zeros(len(PARTS) + 2, dtype=torch.float64)
    neutral = rig.neutral_array()
    for batch in loader:
        loss, parts, mask = _step_loss(model, batch, rig, cfg, device, neutral, True)
        _accumulate(sums, loss, parts, mask)
    model.train()
    return _as_parts(all_reduce_sum(sums, world))


def _accumulate(sums: torch.Tensor, loss: torch.Tensor, parts: dict[str, torch.Tensor],
                mask: torch.Tensor) -> None:
    """Add one batch's losses, weighted by its real frames, to [total, parts..., frames]."""
    n = float(mask.sum())
    values = [loss.item()] + [parts[k].item() for k in PARTS]
    sums += torch.tensor([v * n for v in values] + [n], dtype=torch.float64)


def _as_parts(sums: torch.Tensor) -> dict[str, float]:
    """[total, parts..., weight] sums -> weighted means by name."""
    means = (sums[:-1] / sums[-1].clamp(min=1)).tolist()
    return dict(zip(("loss",) + PARTS, means))


def _setup(cfg: TrainConfig, rig: str, out_dir: Path, resume: bool,
           device: torch.device) -> tuple[DualTalkModel, torch.optim.Optimizer, Any, dict]:
    """Model, Adam, StepLR and the run's meta (epoch, step, best_val_loss), fresh or resumed."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = _build_model(cfg, rig, out_dir / "last" if resume else None).to(device)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_step_epochs, cfg.lr_gamma)
    meta: dict[str, Any] = {"epoch": 0, "step": 0, "best_val_loss": math.inf}
    if resume:
        meta = load_train_state(out_dir / "last" / STATE_NAME, optimizer, scheduler)
        if meta["epoch"] >= cfg.epochs:
            logger.warning("resumed at epoch %d, which is already >= epochs=%d: nothing to do "
                           "(raise --epochs)", meta["epoch"], cfg.epochs)
    return model, optimizer, scheduler, meta


def _build_model(cfg: TrainConfig, rig: str, resume_dir: Path | None) -> DualTalkModel:
    """The model to train: the resumed one, a fine-tuning start, or a fresh preset."""
    if resume_dir is not None:
        model = DualTalkModel.load(resume_dir)
    elif cfg.init_from:
        model = DualTalkModel.load(cfg.init_from)
    else:
        model = DualTalkModel.from_preset(cfg.model_preset, **cfg.model_overrides)
    if model.config.rig != rig:
        raise ValueError(f"the model predicts rig {model.config.rig!r} but the data is {rig!r}; "
                         f"set model_overrides: {{rig: {rig}}} in the training config")
    return model


def init_output_head(model: DualTalkModel, dataset: ConversationDataset) -> None:
    """Zero the output layer's weights and set its bias to the mean target of the training set.

    Why: face coefficients vary little (ARKit: ~0.05 std per channel) while a default-initialised
    head outputs noise of ~0.3 std. Adam removes that noise fastest by shrinking the head, which
    also starves everything below it of gradient: the network then predicts the mean pose for
    hundreds of steps. Starting at the mean with a zero head skips that phase (on the synthetic
    corpus the jaw follows the audio after ~25 steps instead of >200).
    """
    total, count = 0.0, 0
    for name in dataset.clip_names:
        for motion in dataset.clip(name).motion:
            total, count = total + motion.sum(axis=0, dtype=np.float64), count + len(motion)
    head = model.synthesis_module.blendshape_predictor  # the release's name for the last layer
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.as_tensor(total / count, dtype=head.bias.dtype))


def _loaders(cfg: TrainConfig, data_dir: Path, rank: int, world: int, pin: bool,
             resume_dir: Path | None) -> tuple[ConversationDataset, DataLoader, DataLoader | None]:
    """Train loader (sharded and shuffled per epoch) and validation loader (sharded, in order)."""
    normalise = front_end(cfg, resume_dir) == "wav2vec2"

    def dataset(split: str, rig: str | None) -> ConversationDataset:
        return ConversationDataset(data_dir, split, cfg.window_frames, cfg.overlap_frames,
                                   rig=rig, cache=cfg.cache_clips, normalize_waveform=normalise)

    def loader(ds: Any, sampler: Any = None) -> DataLoader:
        return DataLoader(ds, cfg.batch_size, sampler=sampler, collate_fn=collate_windows,
                          num_workers=cfg.num_workers, pin_memory=pin,
                          persistent_workers=cfg.num_workers > 0)

    train_ds = dataset(cfg.train_split, None)
    # One sampler for 1 or N processes: its shuffle is seeded by (seed, epoch), so a resumed run
    # sees the same batches as an uninterrupted one.
    sampler = DistributedSampler(train_ds, world, rank, shuffle=True, seed=cfg.seed)
    val = None
    if cfg.val_split:
        val_ds = dataset(cfg.val_split, train_ds.rig)
        val = loader(Subset(val_ds, range(rank, len(val_ds), world)))  # no padding duplicates
    return train_ds, loader(train_ds, sampler), val


def _report(record: dict[str, Any], writer: Any, out_dir: Path, epochs: int,
            improved: bool) -> None:
    """Rank 0: TensorBoard scalars, a history line and a log line for one epoch."""
    write_epoch(record, writer, out_dir)
    val = record["val"]
    logger.info("epoch %d/%d  lr %.3g  %.1f s  train %.5f%s", record["epoch"], epochs,
                record["lr"], record["seconds"], record["train"]["loss"],
                f"  val {val['loss']:.5f}{'  (best)' if improved else ''}" if val else "")


def main(argv: list[str] | None = None) -> int:
    """`dualtalk-train`: parse the command line, load the YAML config, train."""
    parser = argparse.ArgumentParser(prog="dualtalk-train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="TrainConfig YAML file")
    parser.add_argument("--data", required=True, help="DATA folder with train/ (and test/)")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, logs)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override device")
    parser.add_argument("--seed", type=int, help="override the config's seed (seed sweeps)")
    args = parser.parse_args(argv)
    quiet = int(os.environ.get("RANK", "0")) != 0
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        cfg = config_io.load(TrainConfig, args.config)
        overrides = {k: v for k, v in (("epochs", args.epochs), ("device", args.device),
                                       ("seed", args.seed)) if v is not None}
        cfg = dataclasses.replace(cfg, **overrides)
        train(cfg, args.data, args.out, resume=args.resume)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    except KeyboardInterrupt:
        logger.warning("interrupted; OUT/last holds the last saved epoch (use --resume)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
