"""Time-curve primitives for facial gestures, evaluated on a sub-frame grid.

Gestures (nods, blinks, smiles, brow raises) are continuous-time events; rendering them on a
100 Hz grid and averaging to 25 fps keeps a 0.2 s blink visible whatever its phase.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

from dualtalk_core.units import FRAME_RATE_HZ

SUB = 4  # sub-samples per frame


def grid(n_frames: int) -> np.ndarray:
    """Sub-frame sample times (s): (n_frames * SUB,)."""
    return (np.arange(n_frames * SUB) + 0.5) / (FRAME_RATE_HZ * SUB)


def to_frames(x: np.ndarray) -> np.ndarray:
    """(n_frames * SUB, ...) -> (n_frames, ...) by averaging each frame's span."""
    return x.reshape(-1, SUB, *x.shape[1:]).mean(axis=1)


def envelope(t: np.ndarray, on_s: float, off_s: float, rise_s: float = 0.2,
             fall_s: float = 0.3) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 plateau: raised-cosine ramps that start at `on_s` and `off_s`."""
    up = np.clip((t - on_s) / rise_s, 0.0, 1.0)
    down = np.clip(1.0 - (t - off_s) / fall_s, 0.0, 1.0)
    ramp = np.minimum(up, np.where(t >= off_s, down, 1.0))
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def nod(t: np.ndarray, onset_s: float, amp: float, freq_hz: float, cycles: int) -> np.ndarray:
    """Chin-down dips (positive pitch) of decaying size: a head nod of 1-3 beats."""
    tau = t - onset_s
    inside = (tau >= 0) & (tau <= cycles / freq_hz)
    shape = 0.5 - 0.5 * np.cos(2 * np.pi * freq_hz * tau)
    return np.where(inside, amp * shape * np.exp(-0.5 * freq_hz * tau / cycles), 0.0)


def blink(t: np.ndarray, onset_s: float, close_s: float = 0.07,
          open_s: float = 0.14) -> np.ndarray:
    """Fast closing, slower opening; peaks at 1 (eyes shut)."""
    tau = t - onset_s
    closing = np.clip(tau / close_s, 0.0, 1.0)
    opening = np.clip(1.0 - (tau - close_s) / open_s, 0.0, 1.0)
    return np.where(tau < close_s, closing, opening) * (tau >= 0)


def ou_noise(rng: np.random.Generator, n: int, sigma: float, tau_s: float) -> np.ndarray:
    """Ornstein-Uhlenbeck drift on the sub-frame grid: stationary std `sigma`, time const
    `tau_s`; the idle sway of a head that is neither speaking nor reacting."""
    dt = 1.0 / (FRAME_RATE_HZ * SUB)
    a = np.exp(-dt / tau_s)
    drive = rng.normal(0.0, sigma * np.sqrt(1 - a * a), n)
    x0 = rng.normal(0.0, sigma)
    out, _ = lfilter([1.0], [1.0, -a], drive, zi=[a * x0])
    return out


def smooth(x: np.ndarray, sigma_s: float) -> np.ndarray:
    """Gaussian smoothing along time of a sub-frame-grid signal."""
    return gaussian_filter1d(x, sigma_s * FRAME_RATE_HZ * SUB, axis=0, mode="nearest")


def upsample(frames: np.ndarray) -> np.ndarray:
    """(n_frames, ...) -> (n_frames * SUB, ...) by repetition (for per-frame prosody)."""
    return np.repeat(frames, SUB, axis=0)
