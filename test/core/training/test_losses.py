"""The training loss: masked recipe terms, window-mean weight, spread terms, head gaps."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dualtalk_core.evaluation import metrics
from dualtalk_core.rigs import get_rig
from dualtalk_core.training.losses import head_gap_losses, motion_loss
from dualtalk_core.training.train_config import TrainConfig

torch.set_num_threads(1)


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


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> the same, a 9-frame moving average over T: motion-like noise."""
    b, t, c = x.shape
    flat = x.permute(0, 2, 1).reshape(b * c, 1, t)
    kernel = torch.ones(1, 1, 9, dtype=x.dtype) / 9
    return torch.conv1d(flat, kernel, padding=4).reshape(b, c, t).permute(0, 2, 1)


def test_frechet_with_partner_is_the_covariance_part_of_metrics_pfd() -> None:
    rig = get_rig("arkit52")
    gen = torch.Generator().manual_seed(1)
    # 200 frames, the training window: the joint EXP block is 96 wide, and a window of fewer
    # frames has tiny eigenvalues whose roots 20 Newton-Schulz steps do not settle to 1e-4.
    # Smooth independent motion: the target and the partner move alike but not together.
    target = _smooth(torch.randn(2, 200, 55, generator=gen, dtype=torch.float64))
    partner = _smooth(torch.randn(2, 200, 55, generator=gen, dtype=torch.float64))
    partner[1] = 0.2  # a dropped partner: a still face
    mask = torch.ones(2, 200, dtype=torch.bool)
    mask[1, 150:] = False
    noise = _smooth(torch.randn(2, 200, 55, generator=gen, dtype=torch.float64))
    pred = 0.6 * target + 0.5 * noise
    cfg = TrainConfig(weight_frechet=1.0, frechet_with_partner=True)
    _, parts = motion_loss(pred, target, mask, rig, cfg, partner)
    want = 0.0
    for g in ("EXP", "JAW", "POSE"):
        idx = rig.group_index(g)
        spread = [metrics.pfd(p[:n, idx], t[:n, idx], q[:n, idx])
                  - metrics.fd_offset(p[:n, idx], t[:n, idx])
                  for p, t, q, n in zip(pred.numpy(), target.numpy(), partner.numpy(), (200, 150))]
        want += float(np.mean(spread)) / len(idx)
    assert parts["frechet"].item() == pytest.approx(want, rel=1e-4)
    # Copying the partner has about the right spread but the wrong co-movement.
    copy = partner.clone()
    copy[1] = target[1]
    alone = motion_loss(copy, target, mask, rig, TrainConfig(weight_frechet=1.0))[1]["frechet"]
    paired = motion_loss(copy, target, mask, rig, cfg, partner)[1]["frechet"]
    assert paired.item() > 3.0 * alone.item()
    with pytest.raises(ValueError, match="partner"):
        motion_loss(pred, target, mask, rig, cfg)


def test_spread_terms_cover_only_the_chosen_groups() -> None:
    rig = get_rig("arkit52")
    gen = torch.Generator().manual_seed(3)
    target = torch.randn(2, 200, 55, generator=gen, dtype=torch.float64)
    pred = target.clone()
    mask = torch.ones(2, 200, dtype=torch.bool)
    pose = rig.group_index("POSE")
    pred[:, :, pose] *= 0.2  # a flat head, right face and jaw
    every = TrainConfig(weight_dispersion=1.0, weight_frechet=1.0)
    _, parts = motion_loss(pred, target, mask, rig, every)
    assert parts["dispersion"].item() > 0.1 and parts["frechet"].item() > 0.1
    face_only = dataclasses.replace(every, spread_groups=["EXP", "JAW"])
    _, parts = motion_loss(pred, target, mask, rig, face_only)
    assert parts["dispersion"].item() == pytest.approx(0.0, abs=1e-9)
    assert parts["frechet"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["pose"].item() > 0.1  # the head is still regressed
    assert TrainConfig().spread_groups == ["EXP", "JAW", "POSE"]
    with pytest.raises(ValueError, match="spread_groups"):
        TrainConfig(spread_groups=["HEAD"])


def test_skipped_channels_leave_the_spread_terms_but_not_the_regression() -> None:
    rig = get_rig("arkit52")
    gen = torch.Generator().manual_seed(4)
    target = torch.randn(2, 200, 55, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 200, dtype=torch.bool)
    yaw, pitch = rig.names.index("headYaw"), rig.names.index("headPitch")
    flat_yaw = target.clone()
    flat_yaw[:, :, yaw] = 0.0  # a head that never turns, everything else right
    every = TrainConfig(weight_dispersion=1.0, weight_frechet=1.0)
    _, parts = motion_loss(flat_yaw, target, mask, rig, every)
    assert parts["dispersion"].item() > 0.1 and parts["frechet"].item() > 0.1
    no_yaw = dataclasses.replace(every, spread_skip_channels=["headYaw"])
    _, parts = motion_loss(flat_yaw, target, mask, rig, no_yaw)
    assert parts["dispersion"].item() == pytest.approx(0.0, abs=1e-9)
    assert parts["frechet"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["pose"].item() > 0.1  # yaw is still regressed
    flat_pitch = target.clone()
    flat_pitch[:, :, pitch] = 0.0  # the other head channels keep their spread terms
    _, parts = motion_loss(flat_pitch, target, mask, rig, no_yaw)
    assert parts["dispersion"].item() > 0.1 and parts["frechet"].item() > 0.1
    assert TrainConfig().spread_skip_channels == []
    with pytest.raises(ValueError, match="headyaw"):
        motion_loss(flat_yaw, target, mask, rig, dataclasses.replace(
            every, spread_skip_channels=["headyaw"]))


def test_head_gap_splits_into_window_level_and_motion_on_real_frames() -> None:
    rig = get_rig("arkit52")
    gen = torch.Generator().manual_seed(2)
    alone = torch.randn(2, 30, 55, generator=gen)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 20:] = False
    pose, exp = rig.group_index("POSE"), rig.group_index("EXP")
    moved = alone.clone()
    moved[:, :, exp] += 1.0  # the face is not the head
    moved[1, 20:] = 99.0  # padding
    level, motion = head_gap_losses(moved, alone, mask, rig)
    assert level.item() == pytest.approx(0.0, abs=1e-6)
    assert motion.item() == pytest.approx(0.0, abs=1e-6)
    moved[:, ::2, pose] += 0.3  # timing the head: +0.3/-0.3 on alternate frames
    moved[:, 1::2, pose] -= 0.3
    level, motion = head_gap_losses(moved, alone, mask, rig)
    assert level.item() == pytest.approx(0.0, abs=1e-6)
    assert motion.item() == pytest.approx(0.09, rel=1e-4)
    moved[:, :, pose[0]] += 0.1  # moving where the head rests
    level, motion = head_gap_losses(moved, alone, mask, rig)
    assert level.item() == pytest.approx(0.01 / 3, rel=1e-4)
    assert motion.item() == pytest.approx(0.09, rel=1e-4)
    assert TrainConfig().weight_head_level == 0.0 and TrainConfig().weight_head_motion == 0.0
    assert not TrainConfig().frechet_with_partner
    with pytest.raises(ValueError, match="weight_head_level"):
        TrainConfig(weight_head_motion=-1.0)


def test_head_motion_tie_covers_only_the_named_head_channels() -> None:
    rig = get_rig("arkit52")
    alone = torch.zeros(1, 20, 55)
    mask = torch.ones(1, 20, dtype=torch.bool)
    pitch, yaw = rig.names.index("headPitch"), rig.names.index("headYaw")
    moved = alone.clone()
    moved[0, ::2, pitch] += 0.2  # a partner-timed nod: +0.1/-0.1 around its level
    _, everywhere = head_gap_losses(moved, alone, mask, rig)
    _, sway_only = head_gap_losses(moved, alone, mask, rig, ["headYaw", "headRoll"])
    assert everywhere.item() == pytest.approx(0.01 / 3, rel=1e-4)
    assert sway_only.item() == pytest.approx(0.0, abs=1e-9)
    moved[0, 1::2, yaw] += 0.2  # swaying with the partner
    _, sway_only = head_gap_losses(moved, alone, mask, rig, ["headYaw", "headRoll"])
    assert sway_only.item() == pytest.approx(0.01 / 2, rel=1e-4)
    assert TrainConfig().head_motion_channels is None
    with pytest.raises(ValueError, match="head_motion_channels"):
        head_gap_losses(moved, alone, mask, rig, ["headyaw"])
    with pytest.raises(ValueError, match="head_motion_channels"):
        head_gap_losses(moved, alone, mask, rig, [])
