"""Dataclass configs that round-trip through YAML and JSON.

Every component takes one config dataclass; this module is the only place that turns those into
files and back, so unknown keys and wrongly typed values are rejected the same way everywhere (a
typo in a YAML file must fail loudly, not fall back to a default silently, and `n_heads: "4"`
must fail naming the field, not deep inside the network). `load` names the file in every error.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a (possibly nested) config dataclass, safe for YAML and JSON."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build `cls` from a dict; unknown keys raise ValueError naming them and the known ones."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)  # type: ignore[arg-type]
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = checked_scalar(value, hint, f"{cls.__name__}.{name}")
    return cls(**kwargs)


_SCALARS = (bool, int, float, str)


def checked_scalar(value: Any, hint: Any, label: str) -> Any:
    """`value` checked against a scalar type hint (`int`, `float | None`, ...), an integer taken
    as a float where a float is declared; other hints (lists, dicts) pass through unchanged.
    TypeError names `label` and the expected type."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    if value is None and type(None) in options:
        return value
    scalars = [t for t in options if t in _SCALARS]
    if not scalars or len(scalars) != len([t for t in options if t is not type(None)]):
        return value  # not a plain scalar field
    for kind in scalars:
        if isinstance(value, bool) != (kind is bool):
            continue  # True is an int to Python, never to a config file
        if kind is float and isinstance(value, numbers.Real):
            return float(value)
        if kind is int and isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, kind):
            return value
    expected = " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t))
                           for t in options)
    raise TypeError(f"{label} must be {expected}, got {value!r} ({type(value).__name__})")


def load(cls: type[T], path: str | Path) -> T:
    """Read a `.yaml`/`.yml`/`.json` file into `cls`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return from_dict(cls, data or {})
    except (ValueError, TypeError, yaml.YAMLError) as err:  # one line naming the file
        raise ValueError(f"{path}: {' '.join(str(err).split())}") from err


def save(config: Any, path: str | Path) -> None:
    """Write a config dataclass as JSON or YAML, chosen by the file extension."""
    path = Path(path)
    data = to_dict(config)
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
