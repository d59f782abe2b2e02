"""Idle motion: the blinks and head sway the inputs do not determine, sampled, seeded, streaming.

A regressor trained on MSE predicts the average of everything it cannot time from the voices:
a blink can fall anywhere in a pause, a head drifts one way or the other, so the average is an
open eye and a still head (measured on the shipped model: 0.15x the corpus' blinks while
speaking, 0.10-0.19x its yaw). Those motions are not noise to be removed but a random process
with a known rate and spectrum, so this module samples one on top of the network's output:

- blinks: after a refractory time since the last closure (the network's own or ours), a blink
  starts each frame with a per-role probability (`ROLES`: speaking, listening, silence) and
  adds the corpus' mean blink shape to the eyelids (screen blend, 1 - (1 - a)(1 - b): never
  past a closed eye). Where the network already blinks as often as the corpus that probability
  is ~0, so a second, floor probability keeps a face alive once the eyes have stayed open for
  longer than nearly every gap between the corpus' blinks (`floor_after_frames`): it fires in a
  long silence, where the network stops blinking, and seldom in the short gaps between turns,
  where the network's own blinks keep resetting the clock;
- head: per axis an AR(2) process whose coefficients are fitted to the corpus head motion the
  network leaves unexplained, driven by Gaussian innovations with a per-role scale.

Every parameter is fitted to the training split (`dualtalk_core.training.idle_fit`) and stored
beside the weights as `idle_motion.json`: data, not code, and no pickle. A stream draws the same
random numbers per frame whatever happens, so frame-by-frame output equals whole-clip output
for the same seed and roles (a test); `reset` starts the same sequence again.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core.audio import voice_activity
from dualtalk_core.audio.voice_activity import ROLES
from dualtalk_core.rigs import Rig, get_rig

IDLE_MOTION_FILE = "idle_motion.json"
FORMAT = "dualtalk-idle-motion/1"
BLINK_CHANNELS = ("eyeBlinkLeft", "eyeBlinkRight")
BLINK_CLOSED = 0.5  # mean eyelid closure at which a frame counts as a blink (aliveness too)
MAX_TEMPLATE_FRAMES = 50  # 2 s: no blink lasts longer
MAX_REFRACTORY_FRAMES = 1500  # 60 s
MAX_INNOVATION = 0.1  # rig units per frame (radians for head angles): a sway, not a jerk
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class IdleMotionParams:
    """What `IdleMotion` samples from; shapes: L template frames, B blink and H head channels,
    one row per role of ROLES."""

    rig: str
    blink_channels: tuple[str, ...]
    blink_template: np.ndarray  # (L, B) closure added over a blink's frames, in [0, 1]
    blink_hazard: np.ndarray  # (3,) per-frame blink probability once refractory has passed
    refractory_frames: int
    head_channels: tuple[str, ...]
    head_ar: np.ndarray  # (H, 2) x_t = a1 x_{t-1} + a2 x_{t-2} + e_t
    head_innovation: np.ndarray  # (3, H) standard deviation of e_t per role
    # (3,) per-frame blink probability once the eyes have been open `floor_after_frames`; files
    # written before these two fields have their floor inside `blink_hazard` (zeros here)
    floor_hazard: np.ndarray = field(default_factory=lambda: np.zeros(len(ROLES)))
    floor_after_frames: int = 0

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise ValueError(f"IdleMotionParams: {problem}")

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "rig": self.rig, "blink_channels": list(self.blink_channels),
                "blink_template": self.blink_template.tolist(),
                "blink_hazard": self.blink_hazard.tolist(),
                "refractory_frames": self.refractory_frames,
                "head_channels": list(self.head_channels), "head_ar": self.head_ar.tolist(),
                "head_innovation": self.head_innovation.tolist(),
                "floor_hazard": self.floor_hazard.tolist(),
                "floor_after_frames": self.floor_after_frames}

    @classmethod
    def from_json(cls, data: Any) -> IdleMotionParams:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not an idle-motion file (expected format {FORMAT!r})")
        try:
            return cls(
                rig=str(data["rig"]), blink_channels=tuple(map(str, data["blink_channels"])),
                blink_template=_array(data["blink_template"], 2),
                blink_hazard=_array(data["blink_hazard"], 1),
                refractory_frames=_int(data["refractory_frames"], "refractory_frames"),
                head_channels=tuple(map(str, data["head_channels"])),
                head_ar=_array(data["head_ar"], 2),
                head_innovation=_array(data["head_innovation"], 2),
                floor_hazard=_array(data.get("floor_hazard", [0.0] * len(ROLES)), 1),
                floor_after_frames=_int(data.get("floor_after_frames", 0),
                                        "floor_after_frames"))
        except KeyError as err:
            raise ValueError(f"missing field {err}") from None


def _array(value: Any, ndim: int) -> np.ndarray:
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected a {ndim}-d array of numbers, got {str(value)[:60]}") from None
    if out.ndim != ndim:
        raise ValueError(f"expected a {ndim}-d array, got shape {out.shape}")
    return out


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {str(value)[:40]!r}")
    return value


def _problem(p: IdleMotionParams) -> str | None:
    """Why `p` cannot drive a face (None: it can). Valid but absurd values count too."""
    try:
        rig = get_rig(p.rig)
    except (KeyError, ValueError):
        return f"unknown rig {p.rig[:40]!r}"
    unknown = [n for n in p.blink_channels + p.head_channels if n not in rig.names]
    arrays = (p.blink_template, p.blink_hazard, p.head_ar, p.head_innovation, p.floor_hazard)
    if unknown:
        return f"channels {unknown[:5]} are not in rig {p.rig}"
    if not all(np.isfinite(a).all() for a in arrays):
        return "values must be finite"
    L, B, H = len(p.blink_template), len(p.blink_channels), len(p.head_channels)
    if p.blink_template.shape != (L, B) or not 1 <= L <= MAX_TEMPLATE_FRAMES:
        return (f"blink_template must be (1..{MAX_TEMPLATE_FRAMES}, {B}), "
                f"got {p.blink_template.shape}")
    if p.blink_template.min(initial=0) < 0 or p.blink_template.max(initial=0) > 1:
        return "blink_template values lie in [0, 1]"
    for name, hazard in (("blink_hazard", p.blink_hazard), ("floor_hazard", p.floor_hazard)):
        if hazard.shape != (len(ROLES),) or not ((0 <= hazard) & (hazard <= 1)).all():
            return f"{name} must be {len(ROLES)} probabilities"
    for name in ("refractory_frames", "floor_after_frames"):
        if not 0 <= getattr(p, name) <= MAX_REFRACTORY_FRAMES:
            return f"{name} must be in [0, {MAX_REFRACTORY_FRAMES}]"
    if p.head_ar.shape != (H, 2) or p.head_innovation.shape != (len(ROLES), H):
        return f"head_ar must be ({H}, 2) and head_innovation ({len(ROLES)}, {H})"
    if not ((0 <= p.head_innovation) & (p.head_innovation <= MAX_INNOVATION)).all():
        return f"head_innovation must lie in [0, {MAX_INNOVATION}]"
    for a1, a2 in p.head_ar:  # AR(2) stationarity triangle: the sway must not grow
        if not (abs(a2) < 1 and a1 + a2 < 1 and a2 - a1 < 1):
            return f"head_ar ({a1:.3g}, {a2:.3g}) is not a stationary AR(2) process"
    return None


def save_idle_motion(params: IdleMotionParams, directory: str | Path) -> Path:
    path = Path(directory) / IDLE_MOTION_FILE
    path.write_text(json.dumps(params.to_json(), indent=1) + "\n")
    path.chmod(0o644)
    return path


def load_idle_motion(directory: str | Path) -> IdleMotionParams | None:
    """The idle motion stored beside a checkpoint folder's weights; None when it has none."""
    path = Path(directory) / IDLE_MOTION_FILE
    if not Path(directory).is_dir() or not path.is_file():
        return None
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not an idle-motion file")
    try:
        return IdleMotionParams.from_json(json.loads(path.read_bytes()))
    except (ValueError, KeyError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: {err}") from None


class IdleMotion:
    """The sampled process of one stream over one rig's frames (rig order)."""

    def __init__(self, params: IdleMotionParams, seed: int = 0) -> None:
        self.params = params
        rig: Rig = get_rig(params.rig)
        self._blink = np.array([rig.names.index(n) for n in params.blink_channels], np.int64)
        self._head = np.array([rig.names.index(n) for n in params.head_channels], np.int64)
        self.seed = int(seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """A new stream: the same random sequence again (or that of `seed`)."""
        if seed is not None:
            self.seed = int(seed)
        # One generator per draw kind: each yields the same numbers in one call of m as in m
        # calls of one, so the frames do not depend on how a stream is cut into steps.
        blink, head = np.random.SeedSequence(self.seed).spawn(2)
        self._rng_blink, self._rng_head = np.random.default_rng(blink), np.random.default_rng(head)
        self._since = self.params.refractory_frames  # frames since the eyes last closed
        self._blink_at: int | None = None  # frame of the template playing, None: none
        zeros = np.zeros(len(self._head))
        self._x = (zeros, zeros)  # head AR state: x_{t-1}, x_{t-2}
        self.blinks = 0  # blinks started by this process

    def apply(self, values: np.ndarray, frame_roles: np.ndarray) -> np.ndarray:
        """(m, C) network frames and their (m,) role indices -> (m, C) frames with idle motion."""
        p, out = self.params, np.array(values, dtype=np.float32, copy=True)
        roles = np.asarray(frame_roles, np.int64)
        u = self._rng_blink.random(len(roles))
        shocks = self._rng_head.standard_normal((len(roles), len(self._head))) \
            * p.head_innovation[roles]  # (m, H)
        closed = (out[:, self._blink].mean(axis=1) >= BLINK_CLOSED).tolist() \
            if len(self._blink) else [False] * len(roles)
        # Python scalars: a stream steps one frame at a time, where numpy scalars cost more
        u, hazard, floor = u.tolist(), p.blink_hazard[roles].tolist(), \
            p.floor_hazard[roles].tolist()
        for j in range(len(roles)):
            self._since = 0 if closed[j] else self._since + 1
            h = max(hazard[j], floor[j]) if self._since >= p.floor_after_frames else hazard[j]
            if self._blink_at is None and self._since >= p.refractory_frames and u[j] < h:
                self._blink_at, self.blinks = 0, self.blinks + 1
            if self._blink_at is not None:
                lids = out[j, self._blink]
                out[j, self._blink] = 1.0 - (1.0 - lids) * (1.0 - p.blink_template[self._blink_at])
                self._since = 0
                self._blink_at = self._blink_at + 1 if self._blink_at + 1 < len(
                    p.blink_template) else None
        out[:, self._head] += self._sway(shocks).astype(np.float32)
        return out

    def _sway(self, shocks: np.ndarray) -> np.ndarray:
        """(m, H) innovations -> (m, H) head offsets, the AR(2) state carried on."""
        a1, a2 = self.params.head_ar[:, 0], self.params.head_ar[:, 1]
        x1, x2 = self._x
        sway = np.empty_like(shocks)
        for j, e in enumerate(shocks):
            x1, x2 = a1 * x1 + a2 * x2 + e, x1
            sway[j] = x1
        self._x = (x1, x2)
        return sway


def apply_to_clip(params: IdleMotionParams, values: np.ndarray, own_audio: np.ndarray,
                  other_audio: np.ndarray, seed: int = 0) -> np.ndarray:
    """Whole-clip form of a stream: (T, C) frames of the face whose voice is `own_audio` (16 kHz)
    -> (T, C), roles from the two voices as a stream decides them."""
    frame_roles = voice_activity.roles(own_audio, other_audio, len(values))
    return IdleMotion(params, seed).apply(values, frame_roles)


class IdlePredictor:
    """The network's `predict` with idle motion on its output: what a stream publishes, for
    evaluation. Each clip direction's seed comes from its own voice, so the model and its
    speaker-only ablation (same voice, partner removed) draw the same random numbers and their
    comparison stays about the partner. `network` is the bare model (the voice-alone listening
    measure reads the network, not the role-dependent sampling)."""

    def __init__(self, network: Any, params: IdleMotionParams, seed: int = 0) -> None:
        self.network, self.params, self.seed = network, params, int(seed)
        self.config = network.config

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray, **kwargs: Any) -> np.ndarray:
        values = self.network.predict(self_audio, partner_audio, partner_motion, **kwargs)
        own = np.asarray(self_audio, dtype=np.float32)
        seed = (self.seed << 32) | zlib.crc32(own.tobytes())
        lower, upper = get_rig(self.params.rig).range_arrays()
        out = apply_to_clip(self.params, values, own, np.asarray(partner_audio, np.float32), seed)
        return np.clip(out, lower, upper)
