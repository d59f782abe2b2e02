"""The engine's idle-motion stage: blinks and head sway on the network's frames, per role.

Between the model and the output stage, so the sampled motion is smoothed, clipped and counted
with the rest. The roles come from the stream's own audio of those frames, decided as
`voice_activity.roles` decides them on a whole clip, so a stream and `IdlePredictor` on the
same clip draw the same motion.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dualtalk_core.audio.voice_activity import VoiceActivity
from dualtalk_core.model.idle_motion import IdleMotion
from dualtalk_core.units import SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from dualtalk_core.streaming.input_tracks import InputTracks
    from dualtalk_core.streaming.stream_config import StreamConfig


class IdleStage:
    """Idle motion of one stream; a no-op for a model without idle motion or with it off."""

    def __init__(self, model: Any, config: StreamConfig) -> None:
        params = getattr(model, "idle_motion", None) if config.idle_motion else None
        self._motion = None if params is None else IdleMotion(params, config.idle_seed)
        self._voices = VoiceActivity()

    @property
    def active(self) -> bool:
        return self._motion is not None

    @property
    def blinks(self) -> int:
        """Blinks the idle motion started in this stream."""
        return 0 if self._motion is None else self._motion.blinks

    def reset(self) -> None:
        """A new stream: the same random sequence again, roles from scratch."""
        self._voices.reset()
        if self._motion is not None:
            self._motion.reset()

    def apply(self, k: int, values: np.ndarray, tracks: InputTracks) -> np.ndarray:
        """(m, C) network frames k..k+m-1 -> the same with idle motion."""
        if self._motion is None:
            return values
        start, end = k * SAMPLES_PER_FRAME, (k + len(values)) * SAMPLES_PER_FRAME
        # a stream's last frame may be partial (flush): the rest of it is silence
        own, other = tracks.read_audio(start, max(start, min(end, tracks.available())))
        return self._motion.apply(values, self._voices.roles(own, other, len(values)))
