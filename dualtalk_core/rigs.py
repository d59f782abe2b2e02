"""Face rigs: channel names, metric groups (EXP/JAW/POSE), neutral values and head rotation.

Two rigs are built in:
- `flame56`: the published DualTalk layout (EMOCA/DECA FLAME): 50 expression coefficients, jaw
  rotation (axis-angle, 3) and head rotation (axis-angle, 3).
- `arkit52`: Apple's 52 ARKit blendshapes in ARKit (Live Link Face) order, then head pitch, yaw and
  roll in radians (55 channels). EXP = the 48 non-jaw blendshapes, JAW = the 4 jaw channels.

Names coming from other tools (NVIDIA Audio2Face `EyeBlinkLeft`, Unreal Live Link `EyeBlinkLeft`,
MediaPipe `eyeBlinkLeft`, VRM-style `eyeBlink_L`) are matched through `canonical_name`.
FLAME channels also answer to the `FaceCoefficients.msg` spellings `jaw0..2` and `pose0..2`
(pose = the FLAME global/head rotation). MediaPipe's `_neutral` score has no rig channel and is
ignored rather than reported as unknown.

Head rotation convention (REP-103 head frame: x forward out of the face, y to the face's left,
z up): `headPitch` rotates about y (+ = chin down), `headYaw` about z (+ = turn to its left),
`headRoll` about x (+ = tilt towards its right shoulder).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
HEAD_POSE: tuple[str, ...] = ("headPitch", "headYaw", "headRoll")
FLAME_NAMES: tuple[str, ...] = (
    tuple(f"exp{i}" for i in range(50))
    + ("jawRotX", "jawRotY", "jawRotZ", "headRotX", "headRotY", "headRotZ")
)
GROUPS: tuple[str, ...] = ("EXP", "JAW", "POSE")
# What a face may carry, whatever the rig: blendshapes lie in [0, 1], FLAME coefficients within
# a few units, rotations within +-pi. Beyond MAX_ABS_VALUE a value is corrupted, not expressive;
# beyond MAX_CHANNELS a name list is not a face (and would cost time and memory to match).
MAX_ABS_VALUE = 10.0
MAX_CHANNELS = 1024
HALF_TURN_RAD = float(np.pi)


@dataclass(frozen=True)
class Rig:
    """A named channel layout with its metric groups; values are (..., dim) arrays.

    `lower`/`upper`: each channel's documented range (FaceCoefficients.msg), which the
    streaming engine keeps its output inside: a consumer driving a rig or a motor may rely on it.
    """

    name: str
    names: tuple[str, ...]
    groups: dict[str, tuple[int, ...]] = field(hash=False)
    neutral: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.names)

    def group_index(self, group: str) -> np.ndarray:
        """Channel indices of EXP, JAW or POSE (the paper's metric groups)."""
        if group not in self.groups:
            raise ValueError(
                f"rig {self.name!r}: unknown group {group!r}; expected one of {GROUPS}")
        return np.asarray(self.groups[group], dtype=np.int64)

    def neutral_array(self) -> np.ndarray:
        return np.asarray(self.neutral, dtype=np.float32)

    def range_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each (dim,) float32: the channels' documented ranges."""
        return (np.asarray(self.lower, dtype=np.float32),
                np.asarray(self.upper, dtype=np.float32))

    def head_quaternion(self, values: np.ndarray) -> np.ndarray:
        """(..., dim) coefficients -> (..., 4) head rotation quaternion (x, y, z, w), REP-103."""
        values = np.asarray(values, dtype=np.float64)
        pose = values[..., list(self.groups["POSE"])]
        if self.name == "flame56":
            # FLAME camera frame (x to the face's left, y up, z out of the face) -> REP-103.
            rotvec = pose[..., [2, 0, 1]]
            quat = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_quat()
            return quat.reshape(*pose.shape[:-1], 4)
        # Intrinsic Z (yaw), Y (pitch), X (roll): scipy's from_euler("ZYX") written out,
        # because scipy's per-call cost (~80 us) was a tenth of a streaming step.
        if pose.ndim == 1:  # one frame, as the engine asks: scalars cost 2 us, arrays 14
            return _zyx_quaternion(*(0.5 * float(a) for a in pose))
        half = pose * 0.5
        cp, cy, cr = np.cos(half[..., 0]), np.cos(half[..., 1]), np.cos(half[..., 2])
        sp, sy, sr = np.sin(half[..., 0]), np.sin(half[..., 1]), np.sin(half[..., 2])
        return np.stack([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                         cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy], axis=-1)


def _zyx_quaternion(half_pitch: float, half_yaw: float, half_roll: float) -> np.ndarray:
    """(4,) x, y, z, w of one head pose from its half angles (`Rig.head_quaternion`)."""
    cp, cy, cr = math.cos(half_pitch), math.cos(half_yaw), math.cos(half_roll)
    sp, sy, sr = math.sin(half_pitch), math.sin(half_yaw), math.sin(half_roll)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


def _arkit() -> Rig:
    names = ARKIT_BLENDSHAPES + HEAD_POSE
    jaw = tuple(i for i, n in enumerate(names) if n.startswith("jaw"))
    pose = tuple(range(len(ARKIT_BLENDSHAPES), len(names)))
    exp = tuple(i for i in range(len(ARKIT_BLENDSHAPES)) if i not in jaw)
    n_shapes = len(ARKIT_BLENDSHAPES)
    # weights in [0, 1]; head angles within a half turn (a head does not turn further)
    lower = (0.0,) * n_shapes + (-HALF_TURN_RAD,) * len(HEAD_POSE)
    upper = (1.0,) * n_shapes + (HALF_TURN_RAD,) * len(HEAD_POSE)
    return Rig("arkit52", names, {"EXP": exp, "JAW": jaw, "POSE": pose}, (0.0,) * len(names),
               lower, upper)


def _flame() -> Rig:
    groups = {"EXP": tuple(range(50)), "JAW": (50, 51, 52), "POSE": (53, 54, 55)}
    # PCA weights have no documented range: only the bound of a sane value; rotations a half turn
    lower = (-MAX_ABS_VALUE,) * 50 + (-HALF_TURN_RAD,) * 6
    upper = (MAX_ABS_VALUE,) * 50 + (HALF_TURN_RAD,) * 6
    return Rig("flame56", FLAME_NAMES, groups, (0.0,) * 56, lower, upper)


RIGS: dict[str, Rig] = {"arkit52": _arkit(), "flame56": _flame()}


def get_rig(name: str) -> Rig:
    """Look a rig up by name (`arkit52` or `flame56`)."""
    if name not in RIGS:
        raise ValueError(f"unknown rig {name!r}; expected one of {sorted(RIGS)}")
    return RIGS[name]


# Alternative spellings per rig: canonical alias -> rig channel name.
ALIASES: dict[str, dict[str, str]] = {
    "flame56": {
        **{f"jaw{i}": f"jawRot{a}" for i, a in enumerate("XYZ")},
        **{f"pose{i}": f"headRot{a}" for i, a in enumerate("XYZ")},
    },
}
IGNORED: frozenset[str] = frozenset({"neutral"})  # MediaPipe `_neutral`: no channel to feed

_SIDE_SUFFIX = re.compile(r"[_.\-\s]([lr])$", re.IGNORECASE)


def canonical_name(name: str) -> str:
    """Case-, separator- and side-spelling-insensitive key: `eyeBlink_L` -> `eyeblinkleft`."""
    name = name.strip()
    match = _SIDE_SUFFIX.search(name)
    if match:
        side = "left" if match.group(1).lower() == "l" else "right"
        name = name[: match.start()] + side
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True)
class ChannelMap:
    """How incoming names map onto a rig: `source[i]` feeds rig channel i (-1 = missing)."""

    source: np.ndarray
    missing: tuple[str, ...]
    unknown: tuple[str, ...]
    duplicates: tuple[str, ...]
    ignored: tuple[str, ...] = ()  # known non-channels such as MediaPipe `_neutral`

    @functools.cached_property
    def fed(self) -> tuple[np.ndarray, np.ndarray]:
        """(rig channels, source columns) of the channels the names feed: a stream maps every
        message through one cached map, so the split is made once."""
        have = np.flatnonzero(self.source >= 0)
        return have, self.source[have]


@functools.lru_cache(maxsize=64)
def map_names(rig_name: str, names: tuple[str, ...]) -> ChannelMap:
    """Match `names` to the rig's channels; cached because a stream repeats one name list."""
    rig = get_rig(rig_name)
    index = {canonical_name(n): i for i, n in enumerate(rig.names)}
    for alias, target in ALIASES.get(rig_name, {}).items():
        index.setdefault(canonical_name(alias), rig.names.index(target))
    source = np.full(rig.dim, -1, dtype=np.int64)
    unknown: list[str] = []
    duplicates: list[str] = []
    ignored: list[str] = []
    for j, raw in enumerate(names):
        key = canonical_name(raw)
        i = index.get(key)
        if i is None:
            (ignored if key in IGNORED else unknown).append(raw)
        elif source[i] >= 0:
            duplicates.append(raw)
        else:
            source[i] = j
    missing = tuple(rig.names[i] for i in np.flatnonzero(source < 0))
    return ChannelMap(source, missing, tuple(unknown), tuple(duplicates), tuple(ignored))


def to_rig_order(
    rig_name: str, names: list[str] | tuple[str, ...], values: np.ndarray
) -> tuple[np.ndarray, ChannelMap]:
    """(len(names),) or (T, len(names)) values -> (rig.dim,) or (T, rig.dim) in rig order.

    Channels the source lacks get the rig's neutral value; the returned map says which.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim not in (1, 2) or values.shape[-1] != len(names):
        raise ValueError(
            f"expected values of shape ({len(names)},) or (T, {len(names)}) to match "
            f"{len(names)} names, got {values.shape}"
        )
    cmap = map_names(rig_name, tuple(names))
    neutral = _neutral_row(rig_name)
    out = neutral.copy() if values.ndim == 1 else np.tile(neutral, (len(values), 1))
    channels, columns = cmap.fed
    out[..., channels] = values[..., columns]
    return out, cmap


@functools.lru_cache(maxsize=None)
def _neutral_row(rig_name: str) -> np.ndarray:
    row = get_rig(rig_name).neutral_array()
    row.flags.writeable = False  # shared by every call
    return row
