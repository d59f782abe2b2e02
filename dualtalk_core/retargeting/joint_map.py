"""The joint map: which face value drives which robot joint, with what gain and within what limits.

A map is a YAML file (docs/retargeting.md; example: config/retarget/neck_jaw.yaml):

    rig: arkit52            # optional: check channel names against this rig when loading
    max_gap_ms: 200         # optional: a longer pause between frames stops the joints
    joints:
      - name: jaw
        source: jawOpen     # a rig channel, head.yaw / head.pitch / head.roll, or {name: weight}
        gain: 0.6           # rad per unit of the source
        offset_rad: 0.0     # position at a neutral face
        min_rad: 0.0
        max_rad: 0.35
        max_velocity_rad_s: 4.0
        max_acceleration_rad_s2: 60.0
        smoothing_ms: 0     # first-order low-pass time constant; 0 = off

Every joint is revolute: positions in rad, velocities in rad/s, accelerations in rad/s^2. A
mistake fails loudly at load time, one line naming the file and the key (unknown keys with a
suggestion, wrong types, NaN, min > max, non-positive limits, unknown channels, duplicate names,
duplicate YAML keys): a typo that silently fell back to a default would move a motor wrongly.
"""
from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from dualtalk_core import rigs
from dualtalk_core.retargeting.head_angles import HEAD_ANGLES

# Sanity bounds: beyond them a value is a typo, not a robot (a face joint turning more than two
# turns, a gain of 1000). Bounded counts keep a corrupt file from costing time or memory.
MAX_JOINTS = 64
MAX_SOURCES = 16  # channels in one weighted sum
MAX_ABS_POSITION_RAD = 4 * math.pi
MAX_VELOCITY_RAD_S = 100.0
MAX_ACCELERATION_RAD_S2 = 100_000.0
MAX_ABS_GAIN = 100.0  # gains and weights
MAX_SMOOTHING_MS = 10_000.0
MAX_GAP_LIMIT_MS = 10_000.0
DEFAULT_MAX_GAP_MS = 200.0  # 5 frames at 25 fps
MAX_FILE_BYTES = 1 << 20  # 64 commented joints take ~20 KiB
_MAX_NAME_CHARS = 128


class MapError(ValueError):
    """A problem at one key of a joint (`joint`) or of the map (`joint` None); one line."""

    def __init__(self, key: str, problem: str, joint: str | None = None) -> None:
        where = f"joint {joint!r}: " if joint is not None else ""
        super().__init__(f"{where}{key}: {problem}")
        self.key, self.problem, self.joint = key, problem, joint


def _number(value: Any, key: str, low: float, high: float) -> float:
    """`value` as a finite float within [low, high] (YAML ints accepted, bools not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MapError(key, f"must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise MapError(key, f"must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise MapError(key, f"must be in [{low:g}, {high:g}], got {value:g}")
    return value


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `known`, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class JointSpec:
    """One revolute joint: position = clip(gain * sum(weight * source) + offset_rad), limited.

    `source` is ((name, weight), ...): rig channels by name and head angles (`head.yaw`,
    `head.pitch`, `head.roll`, rad); one plain source is ((name, 1.0),).
    """

    name: str
    source: tuple[tuple[str, float], ...]
    min_rad: float
    max_rad: float
    max_velocity_rad_s: float
    max_acceleration_rad_s2: float
    gain: float = 1.0
    offset_rad: float = 0.0
    smoothing_ms: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name) > _MAX_NAME_CHARS \
                or any(c.isspace() for c in self.name):
            raise MapError("name", f"must be a non-empty string of at most {_MAX_NAME_CHARS} "
                           f"characters without spaces, got {self.name!r}")
        try:
            self._check_numbers()
            object.__setattr__(self, "source", _checked_source(self.source))
        except MapError as err:
            raise MapError(err.key, err.problem, joint=self.name) from None

    def _check_numbers(self) -> None:
        pos = (-MAX_ABS_POSITION_RAD, MAX_ABS_POSITION_RAD)
        bounds = {"min_rad": pos, "max_rad": pos, "offset_rad": pos,
                  "max_velocity_rad_s": (-math.inf, MAX_VELOCITY_RAD_S),
                  "max_acceleration_rad_s2": (-math.inf, MAX_ACCELERATION_RAD_S2),
                  "gain": (-MAX_ABS_GAIN, MAX_ABS_GAIN), "smoothing_ms": (0.0, MAX_SMOOTHING_MS)}
        for key, (low, high) in bounds.items():
            value = _number(getattr(self, key), key, low, high)
            if low == -math.inf and value <= 0.0:  # a limit: zero would never let it move
                raise MapError(key, f"must be > 0, got {value:g}")
            object.__setattr__(self, key, value)
        if self.min_rad > self.max_rad:  # equal is allowed: a joint locked during bring-up
            raise MapError("max_rad", f"must be >= min_rad ({self.min_rad:g}), "
                           f"got {self.max_rad:g}")

    @property
    def channels(self) -> tuple[str, ...]:
        """The rig channel names this joint reads (its head angles left out)."""
        return tuple(n for n, _ in self.source if n not in HEAD_ANGLES)


def _checked_source(source: Any) -> tuple[tuple[str, float], ...]:
    """A name, {name: weight} or [(name, weight)] -> ((name, weight), ...), checked."""
    if isinstance(source, str):
        source = [(source, 1.0)]
    elif isinstance(source, dict):
        source = list(source.items())
    if not isinstance(source, (tuple, list)) or not 1 <= len(source) <= MAX_SOURCES:
        raise MapError("source", f"must be a channel name or a mapping {{channel: weight}} of 1 "
                       f"to {MAX_SOURCES} channels, got {source!r}")
    out: list[tuple[str, float]] = []
    for item in source:
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[0], str) \
                or not item[0]:
            raise MapError("source", f"expected (channel name, weight) pairs, got {item!r}")
        if item[0] in (n for n, _ in out):
            raise MapError(f"source.{item[0]}", "named twice")
        if item[0].startswith("head.") and item[0] not in HEAD_ANGLES:
            raise MapError("source", f"unknown head angle {item[0]!r}; expected one of "
                           f"{list(HEAD_ANGLES)}{did_you_mean(item[0], HEAD_ANGLES)}")
        out.append((item[0], _number(item[1], f"source.{item[0]}", -MAX_ABS_GAIN, MAX_ABS_GAIN)))
    return tuple(out)


@dataclass(frozen=True)
class JointMap:
    """The joints a retargeter drives, in command order; `rig` (optional) checks channel names;
    a pause between frames longer than `max_gap_ms` stops the joints (see `Retargeter`)."""

    joints: tuple[JointSpec, ...]
    rig: str | None = None
    max_gap_ms: float = DEFAULT_MAX_GAP_MS

    def __post_init__(self) -> None:
        if not isinstance(self.joints, (tuple, list)) or not 1 <= len(self.joints) <= MAX_JOINTS:
            raise MapError("joints", f"must list 1 to {MAX_JOINTS} joints, got "
                           f"{len(self.joints) if isinstance(self.joints, (tuple, list)) else 0}")
        object.__setattr__(self, "joints", tuple(self.joints))
        seen: set[str] = set()
        for j in self.joints:
            if not isinstance(j, JointSpec):
                raise MapError("joints", f"expected JointSpec items, got {type(j).__name__}")
            if j.name in seen:
                raise MapError("name", "duplicate joint name", joint=j.name)
            seen.add(j.name)
        object.__setattr__(self, "max_gap_ms",
                           _number(self.max_gap_ms, "max_gap_ms", 0.0, MAX_GAP_LIMIT_MS))
        if self.max_gap_ms <= 0.0:
            raise MapError("max_gap_ms", f"must be > 0, got {self.max_gap_ms:g}")
        if self.rig is not None:
            if self.rig not in rigs.RIGS:
                hint = did_you_mean(str(self.rig), list(rigs.RIGS))
                raise MapError("rig", f"unknown rig {self.rig!r}; expected one of "
                               f"{sorted(rigs.RIGS)}{hint}")
            source_matrix(self, rigs.get_rig(self.rig).names)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)


def source_matrix(joint_map: JointMap, rig_names: Sequence[str]) -> np.ndarray:
    """(J, C + 3) weights: joint j's raw value = W[j] @ [values (C,), yaw, pitch, roll].

    Channel names match the rig's case- and side-spelling-insensitively (`eyeBlink_L` is
    `eyeBlinkLeft`, see `rigs.canonical_name`); MapError names the joint and the channel.
    """
    names = list(rig_names)
    index = {rigs.canonical_name(n): i for i, n in enumerate(names)}
    weights = np.zeros((len(joint_map.joints), len(names) + len(HEAD_ANGLES)))
    for j, joint in enumerate(joint_map.joints):
        for name, weight in joint.source:
            if name in HEAD_ANGLES:
                weights[j, len(names) + HEAD_ANGLES.index(name)] = weight
                continue
            i = index.get(rigs.canonical_name(name))
            if i is None:
                raise MapError(f"source.{name}", f"not a channel of the rig ({len(names)} "
                               f"channels){did_you_mean(name, names)}", joint=joint.name)
            weights[j, i] += weight
    return weights


_JOINT_KEYS = tuple(f.name for f in fields(JointSpec))
_REQUIRED_KEYS = tuple(f.name for f in fields(JointSpec) if f.default is MISSING)
_MAP_KEYS = tuple(f.name for f in fields(JointMap))


def _joint_from_dict(item: Any, i: int) -> JointSpec:
    """One `joints:` entry -> JointSpec; MapError keys read `joints[i] (name).key`."""
    where = f"joints[{i}]"
    if not isinstance(item, dict):
        raise MapError(where, f"must be a mapping of joint fields, got {type(item).__name__}")
    name = item.get("name")
    label = f"{where} ({name})" if isinstance(name, str) else where
    for key in item:
        if key not in _JOINT_KEYS:
            raise MapError(f"{label}.{key}", f"unknown key{did_you_mean(str(key), _JOINT_KEYS)}; "
                           f"known: {', '.join(_JOINT_KEYS)}")
    for key in _REQUIRED_KEYS:
        if key not in item:
            raise MapError(f"{label}.{key}", "missing (required)")
    try:
        return JointSpec(**item)
    except MapError as err:
        raise MapError(f"{label}.{err.key}", err.problem) from None


def parse_joint_map(data: Any, rig_names: Sequence[str] | None = None) -> JointMap:
    """A parsed YAML document -> JointMap, channels checked against `rig_names` when given."""
    if data is None:
        raise MapError("(top level)", "the document is empty; expected a `joints:` list")
    if not isinstance(data, dict):
        raise MapError("(top level)", f"must be a mapping with a `joints:` list, got "
                       f"{type(data).__name__}")
    for key in data:
        if key not in _MAP_KEYS:
            raise MapError(str(key), f"unknown key{did_you_mean(str(key), _MAP_KEYS)}; known: "
                           f"{', '.join(_MAP_KEYS)}")
    items = data.get("joints")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_JOINTS:
        raise MapError("joints", f"must be a list of 1 to {MAX_JOINTS} joints, got "
                       f"{len(items) if isinstance(items, list) else type(items).__name__}")
    joints = [_joint_from_dict(item, i) for i, item in enumerate(items)]
    rig = data.get("rig")
    if rig is not None and not isinstance(rig, str):
        raise MapError("rig", f"must be a rig name, got {rig!r}")
    try:
        joint_map = JointMap(tuple(joints), rig, data.get("max_gap_ms", DEFAULT_MAX_GAP_MS))
        if rig_names is not None:
            source_matrix(joint_map, rig_names)
    except MapError as err:
        if err.joint is None:
            raise
        names = [j.name for j in joints]
        i = len(names) - 1 - names[::-1].index(err.joint)  # a duplicate: the second one
        raise MapError(f"joints[{i}] ({err.joint}).{err.key}", err.problem) from None
    return joint_map


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                continue  # an unhashable key: SafeLoader's own error names it below
            if key in seen:
                raise MapError(str(key), f"written twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_joint_map(path: str | Path, rig_names: Sequence[str] | None = None) -> JointMap:
    """Read a joint-map YAML file; ValueError in one line naming the file and the key.

    `rig_names` (e.g. `engine.rig.names`) checks every channel the map reads against the rig
    that will feed it; a `rig:` key in the file checks against that built-in rig as well.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"joint map not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes; a joint map is at most "
                         f"{MAX_FILE_BYTES} (is this the right file?)")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
        return parse_joint_map(data, rig_names)
    except (MapError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: {' '.join(str(err).split())}") from None
