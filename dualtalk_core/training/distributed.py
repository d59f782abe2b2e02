"""Where a training process runs under torchrun (or alone), and what the ranks share.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them this is one process, rank 0 of 1,
and nothing here touches `torch.distributed`. The trainer calls these and never
`torch.distributed` itself, so a one-process run has one code path that is also the DDP one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dualtalk_core.model.devices import resolve_device


@dataclass(frozen=True)
class Placement:
    """This process's place in the run."""

    rank: int  # 0 logs and saves
    world: int  # processes; `batch_size` is per process
    device: torch.device
    created_group: bool  # whether `init_distributed` created the process group (and must end it)


def init_distributed(device_name: str) -> Placement:
    """Rank, world size and device from torchrun's environment; joins the process group (NCCL
    on CUDA, gloo on CPU) when there are several processes and none was set up by the caller."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    return Placement(rank, world, device, created)


def close_distributed(place: Placement) -> None:
    """End the process group if `init_distributed` created it (a caller's group is theirs)."""
    if place.created_group:
        dist.destroy_process_group()


def wrap_model(model: nn.Module, place: Placement, find_unused: bool | None) -> nn.Module:
    """The module to step: the model itself alone, DDP over it with several processes.
    `find_unused` None = True for the wav2vec2 front end, whose LayerDrop and SpecAugment leave
    some weights without a gradient in some steps (DDP would wait for them), else False."""
    if place.world == 1:
        return model
    if find_unused is None:
        find_unused = model.config.front_end == "wav2vec2"  # type: ignore[union-attr]
    device = place.device
    return DistributedDataParallel(model, device_ids=None if device.type == "cpu"
                                   else [device.index], find_unused_parameters=find_unused)


def current_rank() -> int:
    """The process group's rank of this process; 0 without a group."""
    return dist.get_rank() if dist.is_initialized() else 0


def all_reduce_sum(sums: torch.Tensor, world: int) -> torch.Tensor:
    """`sums` added up over all ranks, in place (every rank gets the total); as is alone."""
    if world > 1:
        dist.all_reduce(sums)
    return sums


def barrier(world: int) -> None:
    """Wait for every rank: none leaves (and tears the group down) before rank 0 has saved."""
    if world > 1:
        dist.barrier()
