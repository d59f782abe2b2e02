"""Train a DualTalk model with the published recipe, on one device or many through torchrun.

    dualtalk-train --config config/train_lite.yaml --data DATA --out OUT [--resume]
    torchrun --nproc_per_node 4 -m dualtalk_core.training.trainer --config ... --data ... --out ...

Recipe (reference/OFFICIAL_DUALTALK.md): loss = MSE(EXP) + MSE(JAW) + MSE(POSE) + MSE of first
differences over all channels, on windows of 200 frames; Adam, StepLR every 50 epochs. Padded
frames of a batch are masked out of every term (see `dualtalk_core.dataset.windows` for the
batch design).

OUT/last and OUT/best are `model.save` folders (model.safetensors + config.json); OUT/last also
holds train_state.safetensors (optimizer, scheduler, epoch) for --resume. OUT/tb holds TensorBoard
logs, OUT/history.jsonl one line per epoch, OUT/train_config.yaml the config used.
Under torchrun, `batch_size` is per process; only rank 0 logs and saves.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from dualtalk_core import config_files as config_io
from dualtalk_core.training.augment import augment_track, drop_partner
from dualtalk_core.dataset.windows import ConversationDataset, collate_windows
from dualtalk_core.units import SAMPLES_PER_FRAME
from dualtalk_core.model.devices import resolve_device
from dualtalk_core.model.network import DualTalkModel
from dualtalk_core.rigs import GROUPS, Rig, get_rig

logger = logging.getLogger(__name__)

STATE_NAME = "train_state.safetensors"
PARTS = ("exp", "jaw", "pose", "velocity", "dispersion", "frechet", "head_level",
         "head_motion")
NEWTON_SCHULZ_STEPS = 20  # matrix square root iterations of the Frechet term


@dataclass
class TrainConfig:
    """Everything a run depends on besides the data and output folders; defaults = the paper's."""

    model_preset: str = "lite"  # "lite" | "official"
    model_overrides: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields
    init_from: str | None = None  # fine-tune: a model folder or DualTalk.pth instead of a preset
    train_split: str = "train"
    val_split: str | None = "test"  # None: no validation, OUT/best is not written
    window_frames: int = 200
    overlap_frames: int = 0
    batch_size: int = 32  # per process
    epochs: int = 1000
    lr: float = 1e-4
    lr_step_epochs: int = 50
    lr_gamma: float = 0.8
    weight_exp: float = 1.0
    weight_jaw: float = 1.0
    weight_pose: float = 1.0
    weight_velocity: float = 1.0
    # Not in the published recipe (1 = plain MSE): the weight of each window's mean error in the
    # EXP/JAW/POSE terms, which split exactly into that mean's square and the error around it.
    # Much of a window's mean is the person's resting face and head angle, which a voice does not
    # reveal; full weight pays the model to guess it from the voice, and on a new voice the guess
    # can be worse than the average face. Below 1 the loss still anchors the level, but mostly
    # asks for the motion around it. Measured at 0.2: see the default model's card.
    weight_window_mean: float = 1.0
    # Not in the published recipe (0 = off): squared error between the predicted and the true
    # per-channel standard deviation over each window, group-weighted like the MSE terms. Plain
    # MSE rewards a regressor for predicting the mean of whatever it cannot time exactly (blinks,
    # brow raises, head sway), which flattens the motion; this term asks for the right spread.
    weight_dispersion: float = 0.0
    # Not in the published recipe (0 = off): the covariance part of the Frechet distance (FD)
    # between each window's predicted and true frames, per group and divided by its channel
    # count, group-weighted like the MSE terms. The dispersion term matches each channel's
    # spread alone; this one also matches how channels move together (a smile lifts both
    # corners and squints the cheeks; a blink closes both eyes), which is most of FD EXP.
    weight_frechet: float = 0.0
    # Not in the published recipe (False): compute the Frechet term on the joint (partner, self)
    # frames of each group, as P-FD does, rather than on one's own frames alone. Then the cross
    # covariance with the partner counts too: copying the partner's motion where one's own is
    # unpredictable has the right spread but the wrong co-movement, and costs.
    frechet_with_partner: bool = False
    # The groups the dispersion and Frechet terms apply to. Leaving one out asks for its
    # plain regression: the head's sway and gaze turns are not caused by anything the model
    # hears or sees, and a window's spread can be met with noise copied from the partner.
    spread_groups: list[str] = field(default_factory=lambda: list(GROUPS))
    # Groups whose spread terms are (also) computed on a second run of each window with the
    # partner dropped (not in the published recipe; empty = none). Out of `spread_groups`, a
    # group's liveliness must come from one's own voice, and what the partner adds to it is
    # asked only to be accurate (the group's MSE); in both, each run is asked for it.
    spread_groups_without_partner: list[str] = field(default_factory=list)
    # Channels (rig names) that the dispersion and Frechet terms leave out whatever their group
    # (not in the published recipe; empty = none): they are asked for their plain regression.
    # For a channel that nothing heard or seen causes (headYaw: gaze and sway), a spread term
    # can only be met with noise, and the partner's inputs are where the network finds it.
    spread_skip_channels: list[str] = field(default_factory=list)
    # Not in the published recipe (0 = off): each training window also runs with the partner
    # dropped (`augment.drop_partner`), and this weighs the squared difference of the two runs'
    # window-mean head angles. A resting head angle is the person's: it should not jump when a
    # face tracker loses the partner, nor drift with whatever the partner happens to do.
    weight_head_level: float = 0.0
    # Not in the published recipe (0 = off): with the same second run, the squared per-frame
    # gap between the two runs' head angles around their window means. The MSE still pays
    # for partner-timed motion (nods); motion that only fills the spread must then be drawn
    # the same way with or without the partner, i.e. from one's own voice.
    weight_head_motion: float = 0.0
    # The head channels (rig names) that `weight_head_motion` ties; None = every POSE channel.
    # Naming only the sway axes (headYaw, headRoll) ties them and leaves the nod axis
    # (headPitch) free to differ with the partner.
    head_motion_channels: list[str] | None = None
    # Not in the published recipe: random gain, tilt, reverb and noise on both training audio
    # tracks (`dualtalk_core.training.augment`), for voices and microphones
    # the corpus does not have.
    audio_augment: bool = False
    # Not in the published recipe (0 = off): the probability that a training window's partner is
    # replaced by silence and a still neutral face (`augment.drop_partner`), so that the network
    # has learned what to do when a robot has no partner face or voice.
    partner_dropout: float = 0.0
    grad_clip_norm: float = 0.0  # 0 = off, as published
    eval_every_epochs: int = 1  # validate and write OUT/last (and OUT/best) this often
    log_every_steps: int = 10
    num_workers: int = 0
    cache_clips: bool = True
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # DDP: None = True for the wav2vec2 front end, whose LayerDrop and SpecAugment leave some
    # weights without a gradient in some steps, else False.
    find_unused_parameters: bool | None = None
    autocast_bf16: bool = False  # CUDA only; not in the published (float32) recipe
    # Not in the published recipe (False = the release's default initialisation): a fresh
    # model starts with a zero output layer whose bias is the mean training target (see
    # `init_output_head`), so a short CPU run does not spend its first epochs finding the level.
    init_head_from_data: bool = False

    def __post_init__(self) -> None:
        positive = ("window_frames", "batch_size", "epochs", "lr_step_epochs",
                    "eval_every_epochs", "log_every_steps")
        bad = [f"{n}={getattr(self, n)}" for n in positive if getattr(self, n) < 1]
        if bad or self.lr <= 0 or self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"TrainConfig: expected positive {positive}, lr > 0 and device in "
                             f"auto|cpu|cuda; got {bad}, lr={self.lr}, device={self.device!r}")
        unknown = sorted(set(self.spread_groups + self.spread_groups_without_partner)
                         - set(GROUPS))
        if unknown:
            raise ValueError(f"TrainConfig: spread_groups {unknown} are not among {GROUPS}")
        if self.weight_head_level < 0 or self.weight_head_motion < 0:
            raise ValueError(f"TrainConfig: weight_head_level and weight_head_motion must be "
                             f">= 0, got {self.weight_head_level}, {self.weight_head_motion}")
        if not 0.0 <= self.partner_dropout <= 1.0:
            raise ValueError("TrainConfig: partner_dropout is a probability in [0, 1], got "
                             f"{self.partner_dropout}")
        if not 0.0 < self.weight_window_mean <= 1.0:
            raise ValueError("TrainConfig: weight_window_mean must be in (0, 1] (0 would leave "
                             f"the level unanchored), got {self.weight_window_mean}")


@dataclass
class TrainResult:
    model: DualTalkModel  # the trained weights (the last epoch's), on every rank
    history: list[dict[str, Any]]  # per epoch: epoch, lr, train {part: loss}, val or None
    best_val_loss: float


def motion_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, rig: Rig,
                cfg: TrainConfig, partner: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of masked MSE per EXP/JAW/POSE group (its window-mean share weighted by
    `TrainConfig.weight_window_mean`), of velocity (first differences) and of the per-window
    dispersion error (`TrainConfig.weight_dispersion`) and of the per-window covariance part of
    the Frechet distance (`TrainConfig.weight_frechet`).

    pred, target, partner (B, T, C); mask (B, T) True on real frames. Each term is a mean over
    its valid elements, so padding changes neither the scale nor the gradient of real frames.
    `partner` (the partner's motion the model was given) is needed for `frechet_with_partner`.
    Returns the total and the parts named in PARTS but the head gaps (see `_step_loss`).
    """
    if cfg.frechet_with_partner and cfg.weight_frechet > 0 and partner is None:
        raise ValueError("motion_loss: frechet_with_partner needs the partner's motion")
    frame_mask = mask.unsqueeze(-1).to(pred.dtype)  # (B, T, 1)
    err = (pred - target) * frame_mask
    # sum_t e_t^2 = sum_t (e_t - mean e)^2 + n (mean e)^2: scale the second part per window.
    n_window = frame_mask.sum(dim=1)  # (B, 1)
    mean_sq = err.sum(dim=1).square() / n_window.clamp(min=1)  # (B, C) = n (mean e)^2
    sq = err.square().sum(dim=1) - (1.0 - cfg.weight_window_mean) * mean_sq  # (B, C)
    n_frames = frame_mask.sum().clamp(min=1)
    weights = {"exp": cfg.weight_exp, "jaw": cfg.weight_jaw, "pose": cfg.weight_pose,
               "velocity": cfg.weight_velocity, "dispersion": cfg.weight_dispersion,
               "frechet": cfg.weight_frechet}
    parts = {}
    std_err = (_window_std(pred, frame_mask) - _window_std(target, frame_mask)).square()  # (B, C)
    dispersion = pred.new_zeros(())
    frechet = pred.new_zeros(())
    for group in GROUPS:
        idx = torch.as_tensor(rig.group_index(group), device=pred.device)
        parts[group.lower()] = sq[:, idx].sum() / (n_frames * len(idx))
        idx = torch.as_tensor(spread_channels(rig, group, cfg.spread_skip_channels),
                              device=pred.device)
        if group not in cfg.spread_groups or len(idx) == 0:
            continue
        dispersion = dispersion + weights[group.lower()] * std_err[:, idx].mean()
        if cfg.weight_frechet > 0:  # skip the matrix roots when the term is off
            p, g = pred[..., idx], target[..., idx]
            if cfg.frechet_with_partner:  # (B, T, 2c): the partner's frames are the same in both
                other = partner[..., idx].to(pred.dtype)  # type: ignore[index]
                p, g = torch.cat([other, p], dim=-1), torch.cat([other, g], dim=-1)
            spread = window_frechet_spread(p, g, frame_mask)  # (B,)
            frechet = frechet + weights[group.lower()] * spread.mean() / len(idx)
    pair_mask = (mask[:, 1:] & mask[:, :-1]).unsqueeze(-1).to(pred.dtype)  # (B, T-1, 1)
    dv = (pred.diff(dim=1) - target.diff(dim=1)).square() * pair_mask
    parts["velocity"] = dv.sum() / (pair_mask.sum().clamp(min=1) * pred.shape[-1])
    parts["dispersion"] = dispersion
    parts["frechet"] = frechet
    total = sum(weights[k] * parts[k] for k in parts)
    return total, parts  # type: ignore[return-value]


def spread_channels(rig: Rig, group: str, skip: list[str]) -> list[int]:
    """Indices of a group's channels that the spread terms cover: all but those in `skip`.
    A name in `skip` that the rig does not have raises ValueError (a typo must not leave a
    channel's spread asked for silently)."""
    unknown = [name for name in skip if name not in rig.names]
    if unknown:
        raise ValueError(f"spread_skip_channels {unknown}: not channels of rig {rig.name}")
    return [int(i) for i in rig.group_index(group) if rig.names[i] not in skip]


def head_gap_losses(with_partner: torch.Tensor, without: torch.Tensor, mask: torch.Tensor,
                    rig: Rig, motion_channels: list[str] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The gap between head angles predicted with and without the partner, split as the MSE
    splits: (level) mean over windows and head channels of the squared window-mean gap, and
    (motion) mean over real frames and `motion_channels` (None = all head channels) of the
    squared gap around it. (B, T, C) x2, (B, T) mask -> (), ()."""
    pose = rig.group_index("POSE")
    idx = torch.as_tensor(pose, device=with_partner.device)
    frame_mask = mask.unsqueeze(-1).to(with_partner.dtype)  # (B, T, 1)
    n = frame_mask.sum(dim=1).clamp(min=1)  # (B, 1)
    gap = (with_partner - without)[..., idx] * frame_mask  # (B, T, 3)
    level = gap.sum(dim=1) / n  # (B, 3)
    around = (gap - level.unsqueeze(1)) * frame_mask
    cols = list(range(len(pose))) if motion_channels is None else head_channel_columns(
        rig, motion_channels)
    motion = around[..., cols].square().sum() / (frame_mask.sum().clamp(min=1) * len(cols))
    return level.square().mean(), motion


def head_channel_columns(rig: Rig, names: list[str]) -> list[int]:
    """Positions within the POSE group of the named head channels; a name that is not one of
    the rig's head channels raises ValueError (a typo must not tie nothing silently)."""
    head = [rig.names[i] for i in rig.group_index("POSE")]
    unknown = [name for name in names if name not in head]
    if unknown or not names:
        raise ValueError(f"head_motion_channels {names}: expected a non-empty list out of the "
                         f"{rig.name} head channels {head}")
    return [head.index(name) for name in names]


def _window_cov(x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) values, (B, T, 1) mask -> (B, C, C) covariance over each window's real frames
    (divided by n - 1, as `metrics.fd` fits its Gaussians)."""
    n = frame_mask.sum(dim=1)  # (B, 1)
    centred = (x - ((x * frame_mask).sum(dim=1) / n.clamp(min=1)).unsqueeze(1)) * frame_mask
    return centred.transpose(1, 2) @ centred / (n - 1.0).clamp(min=1).unsqueeze(-1)


def _sqrtm_psd(a: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """(B, C, C) symmetric PSD -> its square root by coupled Newton-Schulz iterations.

    Not eigh: the rigs' left/right channel pairs give repeated eigenvalues, where eigh's
    gradient is infinite; these iterations are matrix products, so their gradient is finite.
    They diverge on a negative eigenvalue, so callers pass float64 matrices, where rounding
    leaves at most ~1e-16 of one, which 20 steps grow to ~1e-12.
    """
    norm = a.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]  # (B, 1, 1)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)
    y, z = a / norm, eye
    for _ in range(steps):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt()


def window_frechet_spread(pred: torch.Tensor, target: torch.Tensor,
                          frame_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) prediction and target, (B, T, 1) mask -> (B,) covariance part of the Frechet
    distance per window: tr(P) + tr(G) - 2 tr((G^1/2 P G^1/2)^1/2), P and G the windows'
    covariances, as in `metrics.fd` (the mean part is the MSE terms' window-mean share).
    Computed in float64 (see `_sqrtm_psd`); the target's root is an exact, gradient-free eigh."""
    dtype = pred.dtype
    mask = frame_mask.double()
    cov_p, cov_g = _window_cov(pred.double(), mask), _window_cov(target.double(), mask)
    with torch.no_grad():
        vals, vecs = torch.linalg.eigh(cov_g)
        root_g = vecs @ torch.diag_embed(vals.clamp(min=0.0).sqrt()) @ vecs.transpose(1, 2)
    inner = root_g @ cov_p @ root_g
    cross = _sqrtm_psd(0.5 * (inner + inner.transpose(1, 2)))
    spread = torch.diagonal(cov_p + cov_g - 2.0 * cross, dim1=-2, dim2=-1).sum(-1)
    return spread.to(dtype)


def _window_std(x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) values, (B, T, 1) mask -> (B, C) standard deviation over each window's real
    frames (eps inside the root: the gradient of sqrt at a constant channel is infinite)."""
    n = frame_mask.sum(dim=1).clamp(min=1)  # (B, 1)
    mean = (x * frame_mask).sum(dim=1) / n
    var = ((x - mean.unsqueeze(1)).square() * frame_mask).sum(dim=1) / n
    return (var + 1e-8).sqrt()


def _forward(model: nn.Module, batch: dict[str, Any], device: torch.device,
             bf16: bool = False) -> torch.Tensor:
    """(B, 640 T) audio x2 + (B, T, C) partner motion -> (B, T, C) float32 predicted motion."""
    with torch.autocast(device.type, torch.bfloat16, enabled=bf16 and device.type == "cuda"):
        pred = model(batch["self_audio"].to(device, non_blocking=True),
                     batch["partner_audio"].to(device, non_blocking=True),
                     batch["partner_motion"].to(device, non_blocking=True)).float()
    if pred.shape != batch["target"].shape:
        raise ValueError(f"model output {tuple(pred.shape)} does not match the target "
                         f"{tuple(batch['target'].shape)}: expected (B, ceil(N/640), C)")
    return pred


def _init_distributed(device_name: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether we created the process group) from torchrun's env."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    return rank, world, device, created


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


def _loaders(cfg: TrainConfig, data_dir: Path, rank: int, world: int,
             pin: bool) -> tuple[ConversationDataset, DataLoader, DataLoader | None]:
    """Train loader (sharded and shuffled per epoch) and validation loader (sharded, in order)."""
    def dataset(split: str, rig: str | None) -> ConversationDataset:
        return ConversationDataset(data_dir, split, cfg.window_frames, cfg.overlap_frames,
                                   rig=rig, cache=cfg.cache_clips)

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


def _reduce(sums: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(sums)
    return sums


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


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                rig: Rig, cfg: TrainConfig, device: torch.device, world: int,
                step: int, writer: Any, epoch: int) -> tuple[dict[str, float], int]:
    """One pass over the loader; returns frame-weighted mean losses (all ranks) and the step."""
    model.train()
    sums = torch.zeros(len(PARTS) + 2, dtype=torch.float64)
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=writer is None)
    rank = dist.get_rank() if dist.is_initialized() else 0
    neutral = rig.neutral_array()  # what a dropped partner's face becomes
    for batch in bar:
        if cfg.audio_augment:
            _augment_batch(batch, np.random.default_rng([cfg.seed, epoch, step, rank]))
        if cfg.partner_dropout > 0.0:  # a generator stream of its own, apart from the audio's
            batch["partner_audio"], batch["partner_motion"] = drop_partner(
                batch["partner_audio"], batch["partner_motion"], cfg.partner_dropout,
                np.random.default_rng([cfg.seed, epoch, step, rank, 2]), neutral)
        loss, parts, mask = _step_loss(model, batch, rig, cfg, device, neutral)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
        optimizer.step()
        step += 1
        _accumulate(sums, loss, parts, mask)
        if writer is not None and step % cfg.log_every_steps == 0:
            writer.add_scalar("train_step/loss", loss.item(), step)
            bar.set_postfix(loss=f"{loss.item():.4g}")
    return _as_parts(_reduce(sums, world)), step


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


def _augment_batch(batch: dict[str, Any], rng: np.random.Generator) -> None:
    """Augment the real samples of both audio tracks of every window, in place."""
    for i, frames in enumerate(batch["lengths"].tolist()):
        n = frames * SAMPLES_PER_FRAME
        for key in ("self_audio", "partner_audio"):
            track = batch[key][i, :n].numpy()
            batch[key][i, :n] = torch.from_numpy(augment_track(track, rng))


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, rig: Rig, cfg: TrainConfig,
             device: torch.device, world: int = 1) -> dict[str, float]:
    """Frame-weighted mean validation losses over all ranks' shards."""
    model.eval()
    sums = torch.zeros(len(PARTS) + 2, dtype=torch.float64)
    neutral = rig.neutral_array()
    for batch in loader:
        loss, parts, mask = _step_loss(model, batch, rig, cfg, device, neutral, True)
        _accumulate(sums, loss, parts, mask)
    model.train()
    return _as_parts(_reduce(sums, world))


TrainState = tuple[torch.optim.Optimizer, Any, dict[str, Any]]  # optimizer, scheduler, meta


def save_checkpoint(out_dir: Path, name: str, model: DualTalkModel,
                    state: TrainState | None = None) -> None:
    """Write OUT/<name> via a temporary folder, so a crash never leaves a half-written one."""
    tmp, final = out_dir / f".{name}.tmp", out_dir / name
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    if state is not None:
        optimizer, scheduler, meta = state
        tensors, metadata = _state_to_tensors(optimizer, scheduler, meta)
        save_file(tensors, str(tmp / STATE_NAME), metadata=metadata)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def _state_to_tensors(optimizer: torch.optim.Optimizer, scheduler: Any,
                      meta: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Optimizer tensors as `optim.<param>.<key>`; everything else as JSON metadata (no pickle)."""
    opt = optimizer.state_dict()
    tensors = {f"optim.{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).cpu().contiguous()
               for i, st in opt["state"].items() for k, v in st.items()}
    groups = [{k: g[k] for k in ("lr", "initial_lr") if k in g} for g in opt["param_groups"]]
    metadata = {"meta": json.dumps(meta), "param_groups": json.dumps(groups),
                "scheduler": json.dumps(scheduler.state_dict())}
    return tensors, metadata


def load_train_state(path: Path, optimizer: torch.optim.Optimizer,
                     scheduler: Any) -> dict[str, Any]:
    """Restore optimizer and scheduler from `save_checkpoint`'s file; returns its meta dict."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    for group, saved in zip(current["param_groups"], json.loads(metadata["param_groups"])):
        group.update(saved)
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    scheduler.load_state_dict(json.loads(metadata["scheduler"]))
    return json.loads(metadata["meta"])


def train(cfg: TrainConfig, data_dir: str | Path, out_dir: str | Path,
          resume: bool = False) -> TrainResult:
    """Run or resume training (under torchrun: on every rank); see the module docstring."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    last = out_dir / "last"
    if resume and not (last / STATE_NAME).is_file():
        raise ValueError(f"cannot resume: {last / STATE_NAME} not found; train without --resume")
    if not resume and last.exists():
        raise ValueError(f"{out_dir} already holds a run; pass --resume or choose another --out")
    rank, world, device, created = _init_distributed(cfg.device)
    try:
        return _train(cfg, data_dir, out_dir, resume, rank, world, device)
    finally:
        if created:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, data_dir: Path, out_dir: Path, resume: bool, rank: int,
           world: int, device: torch.device) -> TrainResult:
    main = rank == 0
    train_ds, train_loader, val_loader = _loaders(cfg, data_dir, rank, world,
                                                  pin=device.type == "cuda")
    rig = get_rig(train_ds.rig)
    # Misnamed channels fail here, before the first epoch, rather than at the first step
    # (any group will do: spread_channels checks the names against the whole rig).
    if cfg.head_motion_channels is not None:
        head_channel_columns(rig, cfg.head_motion_channels)
    spread_channels(rig, GROUPS[0], cfg.spread_skip_channels)
    model, optimizer, scheduler, meta = _setup(cfg, rig.name, out_dir, resume, device)
    if cfg.init_head_from_data and not resume and not cfg.init_from:
        init_output_head(model, train_ds)  # every rank: the same data, the same values
    net: nn.Module = model
    if world > 1:
        unused = cfg.find_unused_parameters
        if unused is None:
            unused = model.config.front_end == "wav2vec2"
        net = DistributedDataParallel(model, device_ids=None if device.type == "cpu"
                                      else [device.index], find_unused_parameters=unused)
    writer = _open_logs(cfg, out_dir, meta["epoch"]) if main else None
    if main:
        logger.info("training on %s (%s, %d windows, %d parameters), %s x%d, from epoch %d",
                    data_dir, rig.name, len(train_ds), sum(p.numel() for p in model.parameters()),
                    device, world, meta["epoch"] + 1)
    history = []
    for epoch in range(meta["epoch"] + 1, cfg.epochs + 1):
        # Randomness (dropout; numpy: wav2vec2's SpecAugment) seeded per (epoch, rank): a resumed
        # run repeats an uninterrupted one exactly without saving RNG states.
        torch.manual_seed(cfg.seed + 10_000 * epoch + rank)
        np.random.seed((cfg.seed + 10_000 * epoch + rank) % 2**32)
        train_loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
        lr, started = optimizer.param_groups[0]["lr"], time.perf_counter()
        train_parts, meta["step"] = train_epoch(net, train_loader, optimizer, rig, cfg, device,
                                                world, meta["step"], writer, epoch)
        scheduler.step()
        record = {"epoch": epoch, "lr": lr, "seconds": round(time.perf_counter() - started, 3),
                  "train": train_parts, "val": None}
        due = epoch % cfg.eval_every_epochs == 0 or epoch == cfg.epochs
        if due and val_loader is not None:
            record["val"] = evaluate(model, val_loader, rig, cfg, device, world)
        improved = record["val"] is not None and record["val"]["loss"] < meta["best_val_loss"]
        meta.update(epoch=epoch, best_val_loss=record["val"]["loss"] if improved
                    else meta["best_val_loss"])
        history.append(record)
        if main:
            _report(record, writer, out_dir, cfg.epochs, improved)
            if improved:
                save_checkpoint(out_dir, "best", model)
            if due:
                save_checkpoint(out_dir, "last", model, (optimizer, scheduler, meta))
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()  # no rank leaves (and tears the group down) before rank 0 has saved
    return TrainResult(model, history, meta["best_val_loss"])


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


def _open_logs(cfg: TrainConfig, out_dir: Path, epoch: int) -> Any:
    """Rank 0: the output folder, the config used, history cut to `epoch`, a SummaryWriter."""
    from torch.utils.tensorboard import SummaryWriter  # imported late: slow, rank 0 only

    out_dir.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, out_dir / "train_config.yaml")
    history = out_dir / "history.jsonl"
    if history.exists():  # epochs run after the last checkpoint are run again: drop their lines
        lines = [ln for ln in history.read_text().splitlines() if json.loads(ln)["epoch"] <= epoch]
        history.write_text("".join(ln + "\n" for ln in lines))
    return SummaryWriter(str(out_dir / "tb"))


def _report(record: dict[str, Any], writer: Any, out_dir: Path, epochs: int,
            improved: bool) -> None:
    """Rank 0: TensorBoard scalars, a history line and a log line for one epoch."""
    epoch = record["epoch"]
    writer.add_scalar("lr", record["lr"], epoch)
    for split in ("train", "val"):
        for name, value in (record[split] or {}).items():
            writer.add_scalar(f"{split}/{name}", value, epoch)
    writer.flush()
    with open(out_dir / "history.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    val = record["val"]
    logger.info("epoch %d/%d  lr %.3g  %.1f s  train %.5f%s", epoch, epochs, record["lr"],
                record["seconds"], record["train"]["loss"],
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
