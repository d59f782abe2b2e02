"""One training process without torchrun: rank 0 of 1, no process group, nothing wrapped.
(Two processes under gloo: test_trainer.py::test_ddp_two_cpu_processes_agree.)"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dualtalk_core.training.distributed import (Placement, all_reduce_sum, barrier,
                                                close_distributed, current_rank,
                                                init_distributed, wrap_model)


def test_one_process_is_rank_0_of_1_and_needs_no_process_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    place = init_distributed("cpu")
    assert place == Placement(rank=0, world=1, device=torch.device("cpu"), created_group=False)
    assert not torch.distributed.is_initialized()
    model = nn.Linear(2, 2)
    assert wrap_model(model, place, None) is model
    sums = torch.arange(3.0)
    assert all_reduce_sum(sums, place.world) is sums and sums.tolist() == [0.0, 1.0, 2.0]
    assert current_rank() == 0
    barrier(place.world)
    close_distributed(place)  # nothing to end: the group was never created
    with pytest.raises(ValueError, match="device"):
        init_distributed("tpu")
