"""The training loss: the published recipe's masked MSE terms and the optional spread and
head-gap terms that `TrainConfig` switches on (docs/EXPERIMENTS.md says why each exists).

Every function takes (B, T, C) motion and a (B, T) mask, True on real frames, and takes each
mean over valid elements only, so padding changes neither a term's scale nor the gradient of real
frames. The Frechet term needs matrix square roots; they are taken by Newton-Schulz iterations
(see `_sqrtm_psd`) because eigh's gradient is infinite at the rigs' repeated eigenvalues.
"""
from __future__ import annotations

import torch

from dualtalk_core.rigs import GROUPS, Rig
from dualtalk_core.training.train_config import TrainConfig

# Names of the loss parts reported per epoch (history, TensorBoard), in that order.
PARTS = ("exp", "jaw", "pose", "velocity", "dispersion", "frechet", "head_level",
         "head_motion")
NEWTON_SCHULZ_STEPS = 20  # matrix square root iterations of the Frechet term


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
    Returns the total and the parts named in PARTS but the head gaps (see
    `trainer._step_loss`).
    """
    if cfg.frechet_with_partner and cfg.weight_frechet > 0 and partner is None:
        raise ValueError("motion_loss: frechet_with_partner needs the partner's motion")
    frame_mask = mask.unsqueeze(-1).to(pred.dtype)  # (B, T, 1)
    err = (pred - target) * frame_mask
    # sum_t e_t^2 = sum_t (e_t - mean e)^2 + n (mean e)^2: scale the second part per window.
    n_window = frame_mask.sum(dim=1)  # (B, 1)
    mean_sq = err.sum(dim=1).square() / n_window.clamp(min=1)  # (B, C) = n (mean e)^2
    sq = err.square().sum(dim=1) - (1.0 - cfg.weight_window_mean) * mean_sq  # (B, C)
    weights = _weights(cfg)
    parts, dispersion, frechet = _group_terms(pred, target, frame_mask, sq, rig, cfg, partner)
    pair_mask = (mask[:, 1:] & mask[:, :-1]).unsqueeze(-1).to(pred.dtype)  # (B, T-1, 1)
    dv = (pred.diff(dim=1) - target.diff(dim=1)).square() * pair_mask
    parts["velocity"] = dv.sum() / (pair_mask.sum().clamp(min=1) * pred.shape[-1])
    parts["dispersion"] = dispersion
    parts["frechet"] = frechet
    total = sum(weights[k] * parts[k] for k in parts)
    return total, parts  # type: ignore[return-value]


def _weights(cfg: TrainConfig) -> dict[str, float]:
    """The weight of each part that `motion_loss` sums (the head gaps are `_step_loss`'s)."""
    return {"exp": cfg.weight_exp, "jaw": cfg.weight_jaw, "pose": cfg.weight_pose,
            "velocity": cfg.weight_velocity, "dispersion": cfg.weight_dispersion,
            "frechet": cfg.weight_frechet}


def _group_terms(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor,
                 sq: torch.Tensor, rig: Rig, cfg: TrainConfig, partner: torch.Tensor | None
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Per group: its MSE part from `sq` (B, C), and its group-weighted share of the dispersion
    and Frechet terms. One loop for all three, in the order `motion_loss` always built them:
    the autograd graph, and so the order gradients are summed in, stays bit-for-bit the same."""
    weights = _weights(cfg)
    n_frames = frame_mask.sum().clamp(min=1)
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
    return parts, dispersion, frechet


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
