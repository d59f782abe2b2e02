"""Run-folder checkpoints: written whole or not at all, and the optimizer, scheduler and meta
of OUT/last read back exactly (what --resume relies on)."""
from __future__ import annotations

import logging
import math
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import torch

from dualtalk_core.model import DualTalkModel
from dualtalk_core.training.train_state import STATE_NAME, load_train_state, save_checkpoint

torch.set_num_threads(1)
TINY = {"feature_dim": 16, "audio_hidden_dim": 16, "ff_dim": 32, "n_mels": 16,
        "n_interaction_layers": 1, "lstm_layers": 1, "device": "cpu"}


def _optimizers(model: DualTalkModel) -> tuple[torch.optim.Optimizer, Any]:
    """Adam and StepLR as the trainer makes them (halving every step, to see it restored)."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)


def test_checkpoint_round_trips_optimizer_scheduler_and_meta(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DualTalkModel.from_preset("lite", **TINY)
    optimizer, scheduler = _optimizers(model)
    for _ in range(2):  # Adam state (step, moments) and a decayed learning rate to restore
        optimizer.zero_grad()
        sum(p.square().sum() for p in model.parameters()).backward()
        optimizer.step()
        scheduler.step()
    meta = {"epoch": 2, "step": 2, "best_val_loss": math.inf}  # inf: no validation yet
    save_checkpoint(tmp_path, "last", model, (optimizer, scheduler, meta))
    save_checkpoint(tmp_path, "best", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "last"]  # no .tmp left
    assert (tmp_path / "last" / STATE_NAME).is_file()
    assert not (tmp_path / "best" / STATE_NAME).exists()  # weights only

    loaded = DualTalkModel.load(tmp_path / "last")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    optimizer2, scheduler2 = _optimizers(loaded)
    assert load_train_state(tmp_path / "last" / STATE_NAME, optimizer2, scheduler2) == meta
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == 2.5e-3
    saved, restored = optimizer.state_dict()["state"], optimizer2.state_dict()["state"]
    assert saved.keys() == restored.keys()
    for index, state in saved.items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), restored[index][name]), (index, name)


def test_a_checkpoint_replaces_the_previous_one(tmp_path: Path) -> None:
    torch.manual_seed(0)
    first = DualTalkModel.from_preset("lite", **TINY)
    torch.manual_seed(1)
    second = DualTalkModel.from_preset("lite", **TINY)
    save_checkpoint(tmp_path, "best", first)
    save_checkpoint(tmp_path, "best", second)
    loaded = DualTalkModel.load(tmp_path / "best").state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in second.state_dict().items())


def test_checkpoints_are_readable_by_other_users_and_logged_by_final_name(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """0644 files and 0755 folders even under a private umask (safetensors writes 0600 files),
    and the log names OUT/last, not the temporary folder it was written in."""
    model = DualTalkModel.from_preset("lite", **TINY)
    optimizer, scheduler = _optimizers(model)
    old = os.umask(0o077)
    try:
        with caplog.at_level(logging.INFO, logger="dualtalk_core"):
            save_checkpoint(tmp_path, "last", model, (optimizer, scheduler, {"epoch": 1}))
    finally:
        os.umask(old)
    last = tmp_path / "last"
    assert stat.S_IMODE(last.stat().st_mode) == 0o755
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in last.iterdir()}
    assert modes == {"config.json": 0o644, "model.safetensors": 0o644, STATE_NAME: 0o644}
    logged = [r.getMessage() for r in caplog.records]
    assert f"saved checkpoint {last}" in logged
    assert not any(".last.tmp" in line for line in logged), logged
