"""Per-frame loudness and pitch (F0) of a 16 kHz voice track, at 25 fps.

These drive the speaker's own head motion and brows, so motion is tied to what a model can
hear in the same person's audio. Pitch comes from a normalised autocorrelation over an 80 ms
window centred on each frame: simple, deterministic and fast enough for thousands of clips.
"""
from __future__ import annotations

import numpy as np

from dualtalk_core.units import SAMPLES_PER_FRAME, SAMPLE_RATE_HZ

_WIN = 1280                    # 80 ms analysis window: two periods of a 25 Hz voice
_F0_RANGE_HZ = (60.0, 420.0)
_VOICING_THRESHOLD = 0.45


def _frames(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) -> (n_frames, _WIN) windows centred on each frame's span, zero padded."""
    pad = (_WIN - SAMPLES_PER_FRAME) // 2
    padded = np.zeros(n_frames * SAMPLES_PER_FRAME + _WIN, np.float64)
    seg = audio[: n_frames * SAMPLES_PER_FRAME].astype(np.float64)
    padded[pad:pad + len(seg)] = seg
    idx = np.arange(n_frames)[:, None] * SAMPLES_PER_FRAME + np.arange(_WIN)[None, :]
    return padded[idx]


def energy_db(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) -> (n_frames,) RMS level in dB full scale (floor -80 dB)."""
    rms = np.sqrt(np.mean(_frames(audio, n_frames) ** 2, axis=1))
    return (20.0 * np.log10(np.maximum(rms, 1e-4))).astype(np.float32)


def pitch_hz(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(N,) -> (n_frames,) F0 in Hz; 0 where the frame is unvoiced or silent."""
    frames = _frames(audio, n_frames)
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames *= np.hanning(_WIN)[None, :]
    spec = np.fft.rfft(frames, n=2 * _WIN, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :_WIN]
    lag_lo = int(SAMPLE_RATE_HZ / _F0_RANGE_HZ[1])
    lag_hi = int(SAMPLE_RATE_HZ / _F0_RANGE_HZ[0])
    # Divide by the window's own autocorrelation so long lags are not penalised.
    win_acf = np.correlate(np.hanning(_WIN), np.hanning(_WIN), "full")[_WIN - 1:]
    win_acf = win_acf / win_acf[0]
    norm = acf[:, lag_lo:lag_hi] / np.maximum(acf[:, :1], 1e-12) / win_acf[lag_lo:lag_hi]
    best = np.argmax(norm, axis=1)
    peak = norm[np.arange(n_frames), best]
    f0 = SAMPLE_RATE_HZ / (best + lag_lo)
    loud = np.sqrt(np.mean(frames ** 2, axis=1)) > 3e-3
    voiced = (peak > _VOICING_THRESHOLD) & loud
    return np.where(voiced, f0, 0.0).astype(np.float32)


def pitch_z(f0: np.ndarray) -> np.ndarray:
    """F0 -> z-score in semitones over the voiced frames (0 where unvoiced); speaker-free."""
    out = np.zeros_like(f0, dtype=np.float32)
    voiced = f0 > 0
    if voiced.sum() < 3:
        return out
    st = 12.0 * np.log2(f0[voiced])
    out[voiced] = (st - st.mean()) / max(float(st.std()), 0.5)
    return out
