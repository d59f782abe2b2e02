"""The run folder OUT: checkpoints, the state `--resume` restores, and the per-epoch logs.

OUT/<name> is a `model.save` folder; OUT/last also holds the optimizer, scheduler and run meta
(epoch, step, best_val_loss), as safetensors tensors and JSON metadata in one file, so a resumed
run never unpickles anything. OUT/train_config.yaml is the config used, OUT/history.jsonl one
line per epoch and OUT/tb the TensorBoard logs. Only rank 0 writes here.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dualtalk_core import config_files as config_io
from dualtalk_core.model import DualTalkModel
from dualtalk_core.model.checkpoint import make_readable
from dualtalk_core.training.train_config import TrainConfig

log = logging.getLogger(__name__)

STATE_NAME = "train_state.safetensors"

TrainState = tuple[torch.optim.Optimizer, Any, dict[str, Any]]  # optimizer, scheduler, meta


def save_checkpoint(out_dir: Path, name: str, model: DualTalkModel,
                    state: TrainState | None = None) -> None:
    """Write OUT/<name> via a temporary folder, so a crash never leaves a half-written one.

    Files come out 0644 and the folder 0755 (`checkpoint.make_readable`)."""
    tmp, final = out_dir / f".{name}.tmp", out_dir / name
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    if state is not None:
        optimizer, scheduler, meta = state
        tensors, metadata = _state_to_tensors(optimizer, scheduler, meta)
        save_file(tensors, str(tmp / STATE_NAME), metadata=metadata)
        make_readable(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("saved checkpoint %s", final)  # the final name: the temporary one is gone


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


def open_run_logs(cfg: TrainConfig, out_dir: Path, epoch: int) -> Any:
    """Rank 0: the output folder, the config used, history cut to `epoch`, a SummaryWriter."""
    from torch.utils.tensorboard import SummaryWriter  # imported late: slow, rank 0 only

    out_dir.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, out_dir / "train_config.yaml")
    history = out_dir / "history.jsonl"
    if history.exists():  # epochs run after the last checkpoint are run again: drop their lines
        lines = [ln for ln in history.read_text().splitlines() if json.loads(ln)["epoch"] <= epoch]
        history.write_text("".join(ln + "\n" for ln in lines))
    return SummaryWriter(str(out_dir / "tb"))


def write_epoch(record: dict[str, Any], writer: Any, out_dir: Path) -> None:
    """Rank 0: one epoch's TensorBoard scalars and its line in OUT/history.jsonl."""
    epoch = record["epoch"]
    writer.add_scalar("lr", record["lr"], epoch)
    for split in ("train", "val"):
        for name, value in (record[split] or {}).items():
            writer.add_scalar(f"{split}/{name}", value, epoch)
    writer.flush()
    with open(out_dir / "history.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
