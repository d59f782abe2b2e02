"""Is the face alive? Blink rate and head motion per conversational role, model against corpus.

The paper's metrics score a clip as a whole; a face that freezes while nobody speaks, never
blinks or holds its head still can still score well there. This measures what a viewer notices,
separately in each role of the target: `speaking` (its own voice is active), `listening` (only
the partner's is) and `silence` (neither):

- blinks per minute: onsets of the mean eyeBlink channel rising through BLINK_ON (and falling
  back under BLINK_OFF before the next one counts); rigs without blink channels report None;
- head-angle standard deviation per axis (yaw, pitch, roll; degrees), from the frame's head
  quaternion about each clip direction's mean pose, pooled over the directions of a split.

`compare` gives each figure's ratio model / ground truth and whether it lies within
RATIO_RANGE (0.5x to 2x: what the listening-model issue asks of a face that is alive).
Roles come from `dualtalk_core.audio.voice_activity`, the rule the idle-motion model runs on.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dualtalk_core.audio.voice_activity import ROLES
from dualtalk_core.model.idle_motion import BLINK_CHANNELS, BLINK_CLOSED
from dualtalk_core.retargeting.head_angles import yaw_pitch_roll
from dualtalk_core.rigs import Rig
from dualtalk_core.units import FRAME_RATE_HZ

AXES: tuple[str, ...] = ("yaw", "pitch", "roll")
# hysteresis: one closure is one blink however it wavers (the idle motion's own threshold)
BLINK_ON, BLINK_OFF = BLINK_CLOSED, BLINK_CLOSED / 2
RATIO_RANGE = (0.5, 2.0)


def blink_onsets(values: np.ndarray, rig: Rig) -> np.ndarray | None:
    """(T, C) frames -> frame indices where a blink starts; None for a rig without eyelids."""
    if not all(name in rig.names for name in BLINK_CHANNELS):
        return None
    lids = values[:, [rig.names.index(n) for n in BLINK_CHANNELS]].mean(axis=1)
    onsets, closed = [], False
    for k, v in enumerate(lids):
        if not closed and v >= BLINK_ON:
            onsets.append(k)
            closed = True
        elif closed and v < BLINK_OFF:
            closed = False
    return np.asarray(onsets, dtype=np.int64)


class AlivenessStats:
    """Blinks and head angles of one method over many clip directions, per role."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.frames = np.zeros(len(ROLES), np.int64)
        self.blinks: np.ndarray | None = np.zeros(len(ROLES), np.int64)
        self._sum = np.zeros((len(ROLES), len(AXES)))
        self._sumsq = np.zeros((len(ROLES), len(AXES)))

    def add(self, values: np.ndarray, frame_roles: np.ndarray) -> None:
        """(T, C) frames of one direction and their (T,) roles (truncated to the shorter)."""
        n = min(len(values), len(frame_roles))
        values, frame_roles = values[:n], frame_roles[:n]
        angles = np.degrees(yaw_pitch_roll(self.rig.head_quaternion(values)))  # (n, 3)
        # motion, not posture: each direction about its own mean head pose (speakers of a
        # corpus hold their heads differently; pooled raw angles would count that as motion)
        angles -= angles.mean(axis=0)
        onsets = blink_onsets(values, self.rig)
        if onsets is None:
            self.blinks = None
        for r in range(len(ROLES)):
            mine = frame_roles == r
            self.frames[r] += int(mine.sum())
            self._sum[r] += angles[mine].sum(axis=0)
            self._sumsq[r] += (angles[mine] ** 2).sum(axis=0)
            if self.blinks is not None and onsets is not None:
                self.blinks[r] += int(np.sum(frame_roles[onsets] == r))

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per role: minutes, blinks per minute (None without eyelids), head std per axis."""
        out: dict[str, dict[str, Any]] = {}
        for r, role in enumerate(ROLES):
            n = int(self.frames[r])
            minutes = n / FRAME_RATE_HZ / 60.0
            rate = (float(self.blinks[r]) / minutes if self.blinks is not None and minutes > 0
                    else None)
            std = {}
            for a, axis in enumerate(AXES):
                if n < 2:
                    std[axis] = None
                    continue
                mean = self._sum[r, a] / n
                std[axis] = math.sqrt(max(self._sumsq[r, a] / n - mean * mean, 0.0))
            out[role] = {"minutes": minutes, "blinks_per_min": rate, "head_std_deg": std}
        return out


def compare(model: dict[str, dict[str, Any]],
            gt: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per role, each figure's ratio model / ground truth and whether it is in RATIO_RANGE."""
    out: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        pairs = {"blinks_per_min": (model[role]["blinks_per_min"], gt[role]["blinks_per_min"])}
        for axis in AXES:
            pairs[f"head_std_{axis}"] = (model[role]["head_std_deg"][axis],
                                         gt[role]["head_std_deg"][axis])
        row = {}
        for name, (mine, truth) in pairs.items():
            ratio = mine / truth if mine is not None and truth else None
            row[name] = {"ratio": ratio, "within": ratio is not None
                         and RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]}
        out[role] = row
    return out
