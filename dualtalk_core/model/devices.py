"""Which torch device a model runs on: one rule for inference, training and benchmarks."""
from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str, index: int | None = None) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error.

    `index` picks one GPU (a torchrun rank's LOCAL_RANK); it is ignored on the CPU.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device == "cuda" and index is not None:
        return torch.device("cuda", index)
    return torch.device(device)
