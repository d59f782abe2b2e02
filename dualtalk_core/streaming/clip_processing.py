"""Whole clips through the streaming engine: offline processing that reuses the live code path.

Why not `model.predict` on the clip: the engine's frames are what the robot shows, with their
windows, seams and smoothing; bag replays and tests compare exactly those.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dualtalk_core import rigs
from dualtalk_core.audio import pcm
from dualtalk_core.streaming.engine import StreamingEngine
from dualtalk_core.streaming.output_stage import Frame
from dualtalk_core.streaming.stream_config import StreamConfig
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from dualtalk_core.model import DualTalkModel


def process_clip(engine_or_model: StreamingEngine | DualTalkModel, self_audio: np.ndarray,
                 partner_audio: np.ndarray, partner_motion: np.ndarray | None = None,
                 sample_rate: float = SAMPLE_RATE_HZ, config: StreamConfig | None = None,
                 chunk_ms: float | None = None) -> np.ndarray:
    """Whole clips through the streaming code: (N,), (N,), (T, C) -> (T, C) float32 frames.

    Audio at `sample_rate` is pushed in `chunk_ms` chunks (default: the hop), the partner's
    motion (rig order, T = ceil(N16 / 640) frames, None = neutral) one face per frame, stepping
    after each chunk; then `flush()`. The engine is reset first and its stats show afterwards.
    """
    if isinstance(engine_or_model, StreamingEngine):
        if config is not None:
            raise ValueError("pass config only with a model; the engine has its own")
        engine = engine_or_model
    else:
        engine = StreamingEngine(engine_or_model, config)
    own, other = (pcm.to_mono_float32(a) for a in (self_audio, partner_audio))  # (N,) each
    if own.ndim != 1 or own.shape != other.shape:
        raise ValueError(f"self_audio and partner_audio must be (N,) of one length, got "
                         f"{np.shape(self_audio)} and {np.shape(partner_audio)}")
    rate = pcm.check_rate(sample_rate)
    n_frames = -(-(-(-len(own) * SAMPLE_RATE_HZ // rate)) // SAMPLES_PER_FRAME)
    motion = _clip_motion(partner_motion, n_frames, engine.rig)
    faces = np.zeros((0, engine.rig.dim)) if motion is None else motion  # (T or 0, C)
    chunk = max(1, round((chunk_ms or engine.config.hop_ms) * rate / 1000))
    engine.reset()
    frames: list[Frame] = []
    pushed = 0  # partner faces pushed so far
    for i in range(0, len(own), chunk):
        t = i / rate
        engine.push_self_audio(own[i:i + chunk], rate, t)
        engine.push_partner_audio(other[i:i + chunk], rate, t)
        upto = min(len(faces), math.ceil((i + chunk) / rate * FRAME_RATE_HZ))
        for j in range(pushed, upto):
            engine.push_partner_face(faces[j], engine.rig.names, j / FRAME_RATE_HZ)
        pushed = max(pushed, upto)
        frames.extend(engine.step())
    frames.extend(engine.flush())
    assert [f.index for f in frames] == list(range(n_frames)), (len(frames), n_frames)
    return np.stack([f.values for f in frames]).astype(np.float32)  # (T, C)


def _clip_motion(motion: np.ndarray | None, n_frames: int, rig: rigs.Rig) -> np.ndarray | None:
    """(T, C) float32 partner motion checked against the clip's frames and the rig, or None."""
    if motion is None:
        return None
    motion = np.asarray(motion, dtype=np.float32)
    if motion.shape != (n_frames, rig.dim):
        raise ValueError(f"partner_motion: expected (T, C) = ({n_frames}, {rig.dim}) (T = "
                         f"ceil(N16 / 640), rig {rig.name}), got {motion.shape}")
    return motion
