"""Where a DualTalkModel's weights come from when not from its random initialisation.

- `load_model`: a checkpoint folder, its `.safetensors` file or the published `.pth`. The saved
  config's architecture fields are authoritative, and keys and shapes must match exactly;
  `save_model` writes what it reads. File formats live in `checkpoint`.
- `build_uniform`: small uniform noise, for timing only.

Both build the network on the meta device where it pays (no memory, no random init: the
official network's two wav2vec2-large encoders take ~20 s to initialise) and then give every
parameter a real tensor. Buffers are derived from the config and made on the CPU even on the
meta device (see `LogMel`), so they keep their values.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dualtalk_core.config_files import from_dict
from dualtalk_core.model import checkpoint
from dualtalk_core.model.devices import resolve_device
from dualtalk_core.model.idle_motion import load_idle_motion
from dualtalk_core.model.model_config import (ARCH_FIELDS, LATER_FIELDS, PRESETS, RUNTIME_FIELDS,
                                              ModelConfig, replace_fields)

if TYPE_CHECKING:  # network imports this module
    from dualtalk_core.model.network import DualTalkModel

log = logging.getLogger(__name__)

UNIFORM_BOUND = 0.05  # build_uniform's weights lie in [-0.05, 0.05): small, finite outputs


def load_model(cls: type[DualTalkModel], path: str | Path,
               overrides: dict[str, Any]) -> DualTalkModel:
    """`cls` with the weights (and, where saved, the config) of the checkpoint at `path`."""
    config_dict, state = checkpoint.read_checkpoint(path)
    config = checkpoint_config(config_dict, path, overrides)
    # Only wav2vec2 on the meta device: the lite network initialises in milliseconds. The
    # checkpoint's tensors then replace the meta ones (assign=True).
    on_meta = config.front_end == "wav2vec2"
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        model = cls(config, load_pretrained=False)
    load_weights(model, state, path, assign=on_meta)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    model.idle_motion = load_idle_motion(folder) if config_dict is not None else None
    log.info("loaded %s (%s front end, rig %s%s)", path, config.front_end, config.rig,
             ", idle motion" if model.idle_motion is not None else "")
    return model.to(resolve_device(config.device))


def checkpoint_config(config_dict: dict[str, Any] | None, path: Any,
                      overrides: dict[str, Any]) -> ModelConfig:
    """The config to build for a checkpoint: its saved one with run-time `overrides`.

    Overriding an architecture field raises ValueError: the weights were trained for the saved
    value. The saved `device` describes the training machine, so it becomes 'auto' unless
    given. A bare .pth carries no config: it is `official` + overrides.
    """
    if config_dict is None:
        return replace_fields(PRESETS["official"], overrides)
    config_file = checkpoint.config_path(path)
    config_dict = {**LATER_FIELDS, **config_dict}
    missing = [f for f in ARCH_FIELDS if f not in config_dict]
    if missing:
        raise ValueError(f"{config_file}: config lacks architecture field(s) {missing}")
    try:
        saved = from_dict(ModelConfig, config_dict)
    except (ValueError, TypeError) as err:  # unknown, wrongly typed or inconsistent fields
        raise ValueError(f"{config_file}: {err}") from err
    changed = [k for k in overrides if k in ARCH_FIELDS and overrides[k] != getattr(saved, k)]
    if changed:
        raise ValueError(f"cannot override architecture field(s) {changed} of {path}; "
                         f"only {RUNTIME_FIELDS} may differ")
    return replace_fields(saved, {"device": "auto", **overrides})


def load_weights(model: DualTalkModel, state: dict[str, torch.Tensor], path: Any,
                 assign: bool) -> None:
    """Load `state` into `model`, strictly: ValueError listing missing, unexpected, misshapen.

    Weight-norm keys are renamed to the spelling the installed transformers uses, and tensors
    cast to the model's dtypes (e.g. a half-precision file).
    """
    own = model.state_dict()
    state = checkpoint.match_weight_norm_spelling(state, own.keys())
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} does not match the {model.config.front_end} network "
            f"(rig {model.config.rig}): missing keys {_head(missing)}, unexpected keys "
            f"{_head(unexpected)}, shape mismatches {_head(wrong)}")
    state = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)


def save_model(model: DualTalkModel, directory: str | Path) -> Path:
    """Write `model.safetensors` + `config.json` (what `load_model` reads); returns the folder."""
    return checkpoint.write_checkpoint(directory, model.config, model.state_dict())


def build_uniform(cls: type[DualTalkModel], config: ModelConfig) -> DualTalkModel:
    """`cls(config)` on `config.device`, every parameter uniform in +-UNIFORM_BOUND.

    For timing only: the cost of a forward pass does not depend on the weights, and skipping
    the random initialisation saves ~20 s for the official network. Pretrained wav2vec2
    weights (`wav2vec2_path`) are not read. Uses the global torch RNG (`torch.manual_seed`).
    """
    with torch.device("meta"):
        model = cls(config, load_pretrained=False)
    buffers = dict(model.named_buffers())
    meta = sorted(name for name, b in buffers.items() if b.is_meta)
    assert not meta, f"buffers {meta} would be left uninitialised"
    device = resolve_device(config.device)
    model = model.to_empty(device=device)  # uninitialised memory for parameters and buffers
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-UNIFORM_BOUND, UNIFORM_BOUND)
        for name, value in buffers.items():
            model.get_buffer(name).copy_(value)
    return model


def _head(keys: list[str], n: int = 8) -> str:
    """The first `n` keys for an error message, and how many there are in all."""
    return "[]" if not keys else ", ".join(keys[:n]) + (f" ... ({len(keys)} in all)"
                                                        if len(keys) > n else "")
