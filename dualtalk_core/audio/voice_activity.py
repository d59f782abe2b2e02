"""Who is speaking, per 40 ms frame: the conversational role the face is in.

Evaluation splits its aliveness figures by role and the idle-motion model blinks and moves the
head at each role's own rate, so both must call a frame "speaking" on the same rule: frame RMS
above VOICE_DBFS, held HANGOVER_FRAMES past each active frame so that the pauses between words
stay inside a turn. The hangover only looks back, so a stream can decide frame k as soon as
frame k's audio is in (`VoiceActivity`), and doing so frame by frame equals the whole-clip
`voice_active` exactly (a test).
"""
from __future__ import annotations

import numpy as np

from dualtalk_core.units import SAMPLES_PER_FRAME

ROLES: tuple[str, ...] = ("speaking", "listening", "silence")
SPEAKING, LISTENING, SILENCE = range(len(ROLES))
VOICE_DBFS = -45.0
HANGOVER_FRAMES = 8  # 320 ms: pauses between words and phrases belong to the turn


# RMS above VOICE_DBFS, as the frame's summed power: one comparison, no log per frame
_LOUD_POWER_SUM = SAMPLES_PER_FRAME * 10.0 ** (VOICE_DBFS / 10.0)


def frame_loud(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) 16 kHz audio -> (n_frames,) bool: frame k's own RMS is above VOICE_DBFS (audio
    short of n_frames frames counts as silence)."""
    want = n_frames * SAMPLES_PER_FRAME
    x = np.asarray(audio[:want], np.float64)
    if len(x) < want:
        x = np.concatenate([x, np.zeros(want - len(x))])
    x = x.reshape(n_frames, SAMPLES_PER_FRAME)
    return (x * x).sum(axis=1) > _LOUD_POWER_SUM


def voice_active(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) 16 kHz audio -> (n_frames,) bool: the voice is active in (or just before) frame k."""
    loud = frame_loud(audio, n_frames)
    held = loud.copy()
    for lag in range(1, HANGOVER_FRAMES + 1):
        held[lag:] |= loud[:-lag]
    return held


def roles(own_audio: np.ndarray, other_audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames,) role index into ROLES for each frame of the face whose voice is `own`."""
    own, other = voice_active(own_audio, n_frames), voice_active(other_audio, n_frames)
    return np.where(own, SPEAKING, np.where(other, LISTENING, SILENCE))


class VoiceActivity:
    """`roles` frame by frame: the frames since each voice was last loud are the whole state."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._since = [HANGOVER_FRAMES + 1, HANGOVER_FRAMES + 1]  # own, other

    def roles(self, own_audio: np.ndarray, other_audio: np.ndarray,
              n_frames: int | None = None) -> np.ndarray:
        """The next m frames' audio, (m * 640,) each (shorter: silence at the end; m from
        `n_frames` or the own audio's length) -> (m,) role indices."""
        m = len(own_audio) // SAMPLES_PER_FRAME if n_frames is None else n_frames
        own_loud, other_loud = frame_loud(own_audio, m), frame_loud(other_audio, m)
        out = np.empty(m, np.int64)
        own, other = self._since
        for k in range(m):
            own = 0 if own_loud[k] else own + 1
            other = 0 if other_loud[k] else other + 1
            out[k] = SPEAKING if own <= HANGOVER_FRAMES else \
                LISTENING if other <= HANGOVER_FRAMES else SILENCE
        self._since = [own, other]
        return out
