"""Model stepping: the frames of one scheduled batch, computed by running the model on a window.

`WindowedStepper` runs the whole model over the last `window_ms` of input for every batch, so
it serves any network, causal or not. Its interface, `run(k, m, end, tracks) -> (m, C)` and
`reset()`, is all the engine uses, so another way of stepping (an incremental per-frame one for
the causal lite model) can stand in for it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dualtalk_core.streaming.input_tracks import InputTracks
from dualtalk_core.units import SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from dualtalk_core.model import DualTalkModel


class WindowedStepper:
    """Frames k..k+m-1 from one model run on the window of input ending at grid sample `end`.

    Consecutive runs overlap; their seams are cross-faded over `crossfade_frames` with the
    previous run's predictions of the same frames, and the log-mel features of the overlap are
    reused (lite front end).
    """

    def __init__(self, model: DualTalkModel, window_samples: int, crossfade_frames: int) -> None:
        self.model = model
        self.window = window_samples
        self.crossfade_frames = crossfade_frames
        # Frames of log-mel context (lite); None: the model has no log-mel front end to cache.
        self._mel_lead: int | None = getattr(model, "log_mel_context_frames", None)
        self.reset()

    def reset(self) -> None:
        """Forget the previous run (its tail and features): the next run starts afresh."""
        self._tail: tuple[int, np.ndarray] | None = None  # (first frame, (n, C)) of last run
        self._mel: tuple[int, int, np.ndarray] | None = None  # see _log_mel

    def run(self, k: int, m: int, end: int, tracks: InputTracks) -> np.ndarray:
        """(m, C) float32 frames k..k+m-1 from the input window ending at grid sample `end`."""
        f0 = max(0, -(-(end - self.window) // SAMPLES_PER_FRAME))  # window start frame
        start = f0 * SAMPLES_PER_FRAME
        own, other = tracks.read_audio(start, end)  # (N,) each
        motion = tracks.read_faces(f0, -(-(end - start) // SAMPLES_PER_FRAME))  # (T, C)
        mel = self._log_mel(f0, end, tracks)  # (2, T, dim) or None
        extra: dict = {} if mel is None else {"log_mel": mel}
        if self.model.config.front_end == "wav2vec2":
            # No whole clip to normalise with: the statistics of all audio heard so far
            # (`model.waveform_norm`); the frame count stays on the stream's 40 ms grid.
            extra.update(waveform_stats=(tracks.self_audio.heard.current(),
                                         tracks.partner_audio.heard.current()),
                         n_frames=len(motion))
        pred = self.model.predict(own, other, motion, clip=False, **extra)  # (T, C)
        out = self._crossfade(k, pred[k - f0:k - f0 + m])  # (m, C)
        self._tail = (k + m, pred[k - f0 + m:])
        return out

    def _log_mel(self, f0: int, end: int, tracks: InputTracks) -> np.ndarray | None:
        """(2, T, dim) log-mel features of both voices for the window [640 f0, end), or None.

        Why: consecutive windows share all but a hop of audio, and a frame's features depend
        only on its own samples and `lead` frames before it, which never change once written;
        recomputing them all cost ~2 ms of an ~11 ms lite run on an 8 s window (profiled).
        Reused: the last window's frames whose samples were all there, except a window's first
        `lead` frames, which see zeros before the window (as the model does offline).
        """
        lead = self._mel_lead
        n = -(-(end - f0 * SAMPLES_PER_FRAME) // SAMPLES_PER_FRAME)
        if lead is None or n <= lead:
            return None
        parts = [self._mel_of(f0, (f0 + lead) * SAMPLES_PER_FRAME, 0, tracks)]  # (2, lead, dim)
        reuse_end = f0 + lead  # frames [f0 + lead, reuse_end) come from the last window
        if self._mel is not None and self._mel[0] <= f0:
            prev_f0, complete, prev = self._mel
            reuse_end = max(reuse_end, min(complete, f0 + n))
            parts.append(prev[:, f0 + lead - prev_f0:reuse_end - prev_f0])
        if reuse_end < f0 + n:
            parts.append(self._mel_of(reuse_end - lead, end, lead, tracks))
        mel = np.concatenate(parts, axis=1)
        self._mel = (f0, f0 + (end - f0 * SAMPLES_PER_FRAME) // SAMPLES_PER_FRAME, mel)
        return mel

    def _mel_of(self, first: int, stop: int, drop: int, tracks: InputTracks) -> np.ndarray:
        """(2, T - drop, dim) features of frames first + drop... from samples [640 first, stop)."""
        start = first * SAMPLES_PER_FRAME
        audio = np.stack(tracks.read_audio(start, stop))  # (2, N)
        n = -(-(stop - start) // SAMPLES_PER_FRAME)
        return self.model.log_mel_frames(audio, n)[:, drop:]

    def _crossfade(self, k: int, out: np.ndarray) -> np.ndarray:
        """Blend the previous run's predictions into the first frames after the seam."""
        if not self.crossfade_frames or self._tail is None or self._tail[0] != k:
            return out
        n = min(self.crossfade_frames, len(self._tail[1]), len(out))
        w = (np.arange(1, n + 1) / (self.crossfade_frames + 1))[:, None]  # (n, 1) new weight
        out = out.copy()
        out[:n] = (1 - w) * self._tail[1][:n] + w * out[:n]
        return out
