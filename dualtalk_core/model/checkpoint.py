"""Reading and writing model weights without executing anything from the file.

Our checkpoints are a folder with `model.safetensors` (weights) and `config.json` (the
`ModelConfig` they were trained with). The published `DualTalk.pth` is a pickled state dict; it is
read with `torch.load(weights_only=True)`, which refuses arbitrary objects. Nothing else is
unpickled. This module knows nothing about the network: `model_weights.load_model` (behind
`DualTalkModel.load`) checks the config and the keys.

A file that cannot be used (truncated, corrupted, holding code or NaN/Inf weights) raises
ValueError with one line naming the file: the CLIs and nodes print that line and exit 2.

Written files are made 0644 and folders 0755 whatever the umask: safetensors writes through a
private temporary file (0600), and a checkpoint trained by one user is loaded by another (the
robot's service account).
"""
from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dualtalk_core import config_files as config_io

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
# The model the nodes and tools load when none is named.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "default"
FILE_MODE, DIR_MODE = 0o644, 0o755  # readable by every user; only the owner writes
# Old (torch.nn.utils.weight_norm) and new (parametrizations) spellings of one weight-norm pair.
_WEIGHT_NORM_SPELLINGS = (
    (".weight_g", ".parametrizations.weight.original0"),
    (".weight_v", ".parametrizations.weight.original1"),
)


def write_checkpoint(directory: str | Path, model_config: Any,
                     state_dict: dict[str, torch.Tensor]) -> Path:
    """Write `model.safetensors` + `config.json` into `directory` (created); returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    config_io.save(model_config, directory / CONFIG_NAME)
    make_readable(directory)
    # debug: a caller writing through a temporary folder logs the final name itself
    log.debug("wrote checkpoint files to %s", directory)
    return directory


def make_readable(directory: Path) -> None:
    """Set `directory` to DIR_MODE and the files directly in it to FILE_MODE."""
    directory.chmod(DIR_MODE)
    for path in directory.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(FILE_MODE)


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor]]:
    """(config dict or None, state dict) from a folder, a `.safetensors` file or a `.pth` file.

    A bare `.pth` (the published `DualTalk.pth`) carries no config: None is returned for it.
    """
    path = Path(path)
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        config, state = _read_config(path / CONFIG_NAME), _read_safetensors(weights)
    elif not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path} (expected a folder with {WEIGHTS_NAME} and "
            f"{CONFIG_NAME}, a .safetensors file, or the published DualTalk.pth)")
    elif path.suffix == ".safetensors":
        weights = path
        config, state = _read_config(config_path(path)), _read_safetensors(path)
    elif path.suffix in TORCH_SUFFIXES:
        weights, config, state = path, None, _read_torch_state_dict(path)
    else:
        raise ValueError(f"unsupported checkpoint file {path}: expected .safetensors or one of "
                         f"{TORCH_SUFFIXES}")
    check_finite(state, weights)
    return config, state


def config_path(path: str | Path) -> Path:
    """The config.json that belongs to checkpoint `path` (a folder or its weights file)."""
    path = Path(path)
    return path / CONFIG_NAME if path.is_dir() else path.with_name(CONFIG_NAME)


def check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """ValueError naming the first tensors holding NaN or Inf: such weights make every output
    NaN, silently, so they are refused at load rather than found in the published faces."""
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ValueError(f"{path}: tensor(s) {', '.join(bad[:3])}{more} hold NaN or Inf "
                         "values: the file is corrupted or came from a diverged training run")


def read_checkpoint_config(path: str | Path) -> dict[str, Any] | None:
    """The config dict of a checkpoint without reading its weights (None: a bare .pth)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".safetensors":
        return _read_config(config_path(path))
    if path.suffix in TORCH_SUFFIXES and path.is_file():
        return None
    raise FileNotFoundError(f"checkpoint not found: {path} (expected a folder with "
                            f"{WEIGHTS_NAME} and {CONFIG_NAME}, or a .pth file)")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a checkpoint's weights need the config.json "
                                "written beside them by DualTalkModel.save")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected weights written by "
                                "DualTalkModel.save")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:  # truncated, corrupted, not safetensors at all
        raise ValueError(f"{path}: not a readable safetensors file, truncated or corrupted "
                         f"({err})") from err


def _read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a pickled state dict, possibly nested under 'state_dict' or 'model'."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused a non-tensor object
        # torch's own text advises weights_only=False, i.e. running the file's code: not shown
        found = re.search(r"GLOBAL (\S+)", str(err))
        if found:
            raise ValueError(f"{path}: refusing to unpickle anything but tensors and "
                             f"containers: the file holds {found.group(1)}; nothing was "
                             "executed") from None
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(err))
        raise ValueError(f"{path}: not a readable torch state dict, truncated or corrupted "
                         f"({detail.group(1).strip() if detail else 'unreadable pickle'})"
                         ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable torch state dict, truncated or corrupted "
                         f"({type(err).__name__}: {_first_line(err)})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor)
                                             for v in data.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (optionally under "
                         "'state_dict' or 'model')")
    # Saved from a DataParallel/DistributedDataParallel wrapper: drop its prefix.
    if data and all(k.startswith("module.") for k in data):
        data = {k[len("module."):]: v for k, v in data.items()}
    return data


def _first_line(err: Exception) -> str:
    """The first line of an exception's text (torch's errors run to paragraphs)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def match_weight_norm_spelling(state_dict: dict[str, torch.Tensor],
                               target_keys: Any) -> dict[str, torch.Tensor]:
    """Rename weight-norm keys (`weight_g/_v` <-> `parametrizations.weight.original0/1`).

    Different transformers/torch releases spell wav2vec2's positional-conv weight norm
    differently; the tensors are the same, so keys are renamed to the spelling the model uses.
    """
    targets = set(target_keys)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key not in targets:
            for old, new in _WEIGHT_NORM_SPELLINGS:
                for src, dst in ((old, new), (new, old)):
                    renamed = key[: -len(src)] + dst
                    if key.endswith(src) and renamed in targets:
                        key = renamed
        out[key] = value
    return out
