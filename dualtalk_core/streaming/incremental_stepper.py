"""Model stepping frame by frame: each input frame is computed once (`IncrementalDualTalk`).

The windowed stepper re-runs the model over seconds of input to emit a hop of frames; this one
feeds the causal lite network only the input frames that arrived since the last run (their
log-mel features and the partner's faces) and keeps every layer's state, so a step costs a
frame's worth of arithmetic whatever the stream's length, and its frames equal whole-clip
inference of the stream (no window start, no seams). It needs a causal log-mel model with a
bounded `attention_span_frames` (fixed-size state); the engine picks it for such models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dualtalk_core.model.incremental import IncrementalDualTalk
from dualtalk_core.model.incremental_layers import LogMel
from dualtalk_core.streaming.input_tracks import InputTracks
from dualtalk_core.units import SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from dualtalk_core.model import DualTalkModel


def supports_incremental(model: DualTalkModel) -> bool:
    """A causal log-mel network with a bounded attention span: fixed-size streaming state."""
    cfg = model.config
    return (cfg.front_end == "logmel" and cfg.lookahead_frames is not None
            and not cfg.lstm_bidirectional and cfg.attention_span_frames is not None)


class IncrementalStepper:
    """Same interface as `WindowedStepper`: `run(k, m, end, tracks) -> (m, C)`, `reset()`."""

    def __init__(self, model: DualTalkModel) -> None:
        if not supports_incremental(model):
            raise ValueError("incremental stepping needs a causal log-mel model with a "
                             "bounded attention_span_frames; use the windowed stepper")
        self.model = model
        self.net = IncrementalDualTalk(model)
        self._features = LogMel(model.joint_encoder.log_mel)  # numpy: no torch call a step
        self.reset()

    def reset(self) -> None:
        """A new stream, or a restart after a stall: the next run starts the network afresh."""
        self.net.reset()
        self._base: int | None = None  # stream frame of the network's input frame 0
        self._pending = np.zeros((0, self.net.n_channels), np.float32)  # computed, not asked for

    def run(self, k: int, m: int, end: int, tracks: InputTracks) -> np.ndarray:
        """(m, C) frames k..k+m-1, pushing every input frame complete by grid sample `end`;
        the last frames of a final batch (`end` short of their lookahead) via a flush."""
        if self._base is None:
            self._base = k
        next_in = self._base + self.net.frames_in
        complete = end // SAMPLES_PER_FRAME  # input frames with all their samples
        final = k + m > complete - self.net.delay_frames
        last = -(-end // SAMPLES_PER_FRAME) if final else complete
        rows = [self._pending] if len(self._pending) else []
        if last > next_in:
            mel = self._log_mel(next_in, last, end, tracks)  # (2, n, dim)
            faces = tracks.read_faces(next_in, last - next_in)  # (n, C)
            rows.append(self.net.push(mel, faces))
        if final:
            rows.append(self.net.flush())
        ready = rows[0] if len(rows) == 1 else np.concatenate(rows)  # one run: no copy
        out, self._pending = ready[:m], ready[m:]
        assert len(out) == m, (k, m, end, len(out))
        return out

    def _log_mel(self, first: int, last: int, end: int, tracks: InputTracks) -> np.ndarray:
        """(2, last - first, dim) features of input frames [first, last) from the samples up to
        `end`; the first reads the STFT's context before it (zeros before the stream's start)."""
        assert self._base is not None
        begin = first * SAMPLES_PER_FRAME
        start = max(begin - self._features.context_samples, self._base * SAMPLES_PER_FRAME)
        audio = np.stack(tracks.read_audio(start, end))  # (2, N)
        return self._features(audio, last - first, begin - start)  # (2, n, dim)
