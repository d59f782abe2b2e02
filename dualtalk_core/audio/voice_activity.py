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


def frame_loud(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) 16 kHz audio -> (n_frames,) bool: frame k's own RMS is above VOICE_DBFS (audio
    short of n_frames frames counts as silence)."""
    x = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float64)
    m = min(len(audio), len(x))
    x[:m] = audio[:m]
    rms = np.sqrt(np.mean(x.reshape(n_frames, SAMPLES_PER_FRAME) ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10)) > VOICE_DBFS


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

    def roles(self, own_audio: np.ndarray, other_audio: np.ndarray) -> np.ndarray:
        """The next m frames' audio, (m * 640,) each -> (m,) role indices."""
        m = len(own_audio) // SAMPLES_PER_FRAME
        loud = (frame_loud(own_audio, m), frame_loud(other_audio, m))
        out = np.empty(m, np.int64)
        for k in range(m):
            active = []
            for v in range(2):
                self._since[v] = 0 if loud[v][k] else self._since[v] + 1
                active.append(self._since[v] <= HANGOVER_FRAMES)
            out[k] = SPEAKING if active[0] else LISTENING if active[1] else SILENCE
        return out
