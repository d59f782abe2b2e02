"""Settings fields that carry their own description, bounds and whether they can change live.

Every settings dataclass (the streaming engine's, the nodes') declares each field once with
`setting(...)`: the default, what it means, its range or choices, and whether a running node
can apply a change. Validation (`check_settings`), the ROS parameter descriptors and the
generated parameters file all read that one declaration, so a default or a bound is never
written twice.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

_KEY = "setting"


@dataclass(frozen=True)
class SettingInfo:
    """What a settings field means and which values it accepts (bounds inclusive)."""

    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] | None = None
    live: bool = False  # a running node applies a change; otherwise the parameter is read-only


def setting(default: Any, description: str, *, min_value: float | None = None,
            max_value: float | None = None, choices: tuple[str, ...] | None = None,
            live: bool = False) -> Any:
    """A dataclass field with its meaning and bounds (numbers need both bounds)."""
    info = SettingInfo(description, min_value, max_value, choices, live)
    return field(default=default, metadata={_KEY: info})


def setting_group(factory: Callable[[], Any], description: str) -> Any:
    """A nested settings dataclass (a parameter namespace such as `stream.smoothing`)."""
    return field(default_factory=factory, metadata={_KEY: SettingInfo(description)})


def info(f: dataclasses.Field) -> SettingInfo:
    """The SettingInfo of a field declared with `setting`/`setting_group`."""
    found = f.metadata.get(_KEY)
    if found is None:
        raise TypeError(f"field {f.name!r} is not declared with config_fields.setting()")
    return found


def field_types(cls: type) -> dict[str, Any]:
    """{field name: resolved type hint} of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def check_settings(obj: Any) -> None:
    """Raise ValueError naming `Class.field` for a value of the wrong type, out of its bounds
    or not among its choices. Integers are accepted (and converted) for float fields; nested
    settings dataclasses check themselves in their own __post_init__."""
    name, kinds = type(obj).__name__, field_types(type(obj))
    for f in dataclasses.fields(obj):
        kind = kinds[f.name]
        if dataclasses.is_dataclass(kind):
            if not isinstance(getattr(obj, f.name), kind):
                raise TypeError(f"{name}.{f.name} must be a {kind.__name__}, got "
                                f"{type(getattr(obj, f.name)).__name__}")
            continue
        value = check_value(getattr(obj, f.name), kind, info(f), f"{name}.{f.name}")
        object.__setattr__(obj, f.name, value)


def check_value(value: Any, kind: Any, spec: SettingInfo, label: str) -> Any:
    """`value` as a `kind` within `spec`'s bounds and choices; ValueError naming `label`."""
    value = coerce(value, kind, label)
    _check_bounds(value, spec, label)
    return value


def coerce(value: Any, kind: Any, label: str) -> Any:
    """`value` as a `kind` (float, int, bool or str); ValueError naming `label` otherwise."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind in (float, int) and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ValueError(f"{label} must be a number ({kind.__name__}), got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"{label} must be a finite number, got {value!r}")
    if kind in (bool, str) and not isinstance(value, kind):
        raise ValueError(f"{label} must be a {kind.__name__}, got {value!r}")
    return value


def _check_bounds(value: Any, spec: SettingInfo, label: str) -> None:
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{label} must be one of {list(spec.choices)}, got {value!r}")
    low, high = spec.min_value, spec.max_value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is None or high is None:
            raise TypeError(f"{label}: a numeric setting needs min_value and max_value")
        if not low <= value <= high:
            raise ValueError(f"{label} must be in [{low:g}, {high:g}], got {value!r}")


def first_read_only_change(old: Any, new: Any, prefix: str = "") -> str | None:
    """The dotted name of the first non-live settings field that differs, or None."""
    for f in dataclasses.fields(old):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if dataclasses.is_dataclass(before):
            found = first_read_only_change(before, after, f"{prefix}{f.name}.")
            if found is not None:
                return found
        elif before != after and not info(f).live:
            return prefix + f.name
    return None


def field_value(config: Any, dotted: str) -> Any:
    """The value of a dotted settings name (`smoothing.beta`)."""
    for name in dotted.split("."):
        config = getattr(config, name)
    return config
