"""Does the model listen to the partner's voice alone? The voice effect with no partner face.

Most robots hear their partner and have no face tracker: the node then holds a neutral partner
face. For each clip direction, the model runs twice with that neutral face, once with the
partner's real voice and once with silence in its place; the voice effect is the mean |change|
of the expression and jaw channels over the frames where the target listens (only the partner
speaks; `voice_activity.roles`). Over a split: the mean, its bootstrap interval over directions
(`verdict.mean_difference_ci`), and `clear`: the interval's low end above MIN_EFFECT, a change
of a thousandth of the channels' range, far above float rounding (a model deaf to the voice
scores ~1e-11) and below what a viewer notices (a nod or smile moves channels by ~0.05).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dualtalk_core.audio.voice_activity import ROLES
from dualtalk_core.rigs import Rig

MIN_EFFECT = 1e-3
LISTENING = ROLES.index("listening")


def voice_effect(method: Any, own_audio: np.ndarray, other_audio: np.ndarray,
                 n_motion_frames: int, rig: Rig, frame_roles: np.ndarray,
                 waveform_stats: Any = None) -> float | None:
    """Mean |face(voice) - face(silence)| over EXP+JAW channels and listening frames, with a
    neutral partner face; None when the target never listens in this direction."""
    runs = neutral_face_runs(method, own_audio, other_audio, n_motion_frames, rig,
                             waveform_stats)
    return effect_of(*runs, frame_roles, rig)


def neutral_face_runs(method: Any, own_audio: np.ndarray, other_audio: np.ndarray,
                      n_motion_frames: int, rig: Rig, waveform_stats: Any = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The method's face with a neutral partner face: with the partner's voice, and silent."""
    neutral = np.tile(rig.neutral_array(), (n_motion_frames, 1))
    with_voice = method.predict(own_audio, other_audio, neutral, waveform_stats=waveform_stats)
    silent = method.predict(own_audio, np.zeros_like(other_audio), neutral,
                            waveform_stats=waveform_stats)
    return with_voice, silent


def effect_of(with_voice: np.ndarray, silent: np.ndarray, frame_roles: np.ndarray,
              rig: Rig) -> float | None:
    """`voice_effect` from the two runs of `neutral_face_runs`."""
    n = min(len(with_voice), len(silent), len(frame_roles))
    listening = frame_roles[:n] == LISTENING
    if not listening.any():
        return None
    channels = np.concatenate([rig.group_index("EXP"), rig.group_index("JAW")])
    diff = np.abs(with_voice[:n][listening][:, channels] - silent[:n][listening][:, channels])
    return float(diff.mean())


def summarize(effects: list[float]) -> dict[str, Any]:
    """Mean voice effect over directions, its bootstrap interval and whether it is clear."""
    # here, not at the top: verdict imports scoring, which imports this module
    from dualtalk_core.evaluation.verdict import mean_difference_ci

    values = np.asarray(effects, dtype=np.float64)
    if values.size == 0:
        return {"n": 0, "mean": None, "ci": None, "clear": False, "min_effect": MIN_EFFECT}
    ci = mean_difference_ci(values, np.zeros_like(values))
    return {"n": int(values.size), "mean": float(values.mean()),
            "ci": None if ci is None else list(ci),
            "clear": ci is not None and ci[0] > MIN_EFFECT, "min_effect": MIN_EFFECT}
