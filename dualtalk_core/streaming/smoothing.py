"""One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) over all channels of a face frame.

Why this filter: a fixed low-pass trades jitter for lag once for all motion; One-Euro lowers its
cutoff while a channel is still (jitter removed) and raises it with the channel's speed (fast
mouth openings stay sharp). Each channel adapts on its own speed; the state is explicit and
`reset()` starts over, as the streaming engine does when its stream restarts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dualtalk_core.config_fields import check_settings, setting


@dataclass
class OneEuroConfig:
    """One-Euro parameters; `enabled=False` passes frames through unchanged. All live: the
    filter reads them at every frame."""

    enabled: bool = setting(
        True, "Filter the output frames; false passes them through unchanged.", live=True)
    min_cutoff_hz: float = setting(
        1.5,
        "Cutoff while a channel is still: 1.5 Hz removes frame-to-frame jitter (12.5 Hz is "
        "the 25 fps Nyquist rate).",
        min_value=0.001, max_value=100.0, live=True)
    beta: float = setting(
        0.7,
        "Cutoff growth in Hz per unit/s of a channel's speed: a 0 to 1 mouth opening in 0.1 s "
        "gets 1.5 + 10 * 0.7 = 8.5 Hz, about 19 ms of lag. 0 = a fixed low-pass.",
        min_value=0.0, max_value=100.0, live=True)
    d_cutoff_hz: float = setting(
        1.0, "Cutoff of the speed estimate itself (the original paper's value).",
        min_value=0.001, max_value=100.0, live=True)

    def __post_init__(self) -> None:
        check_settings(self)  # ValueError naming OneEuroConfig.<field> and its range


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass at `cutoff_hz` sampled every `dt_s`:
    1 / (1 + tau / dt) with tau = 1 / (2 pi f), as r / (1 + r) with r = 2 pi f dt (three array
    operations a frame instead of five)."""
    r = (2.0 * math.pi * dt_s) * cutoff_hz
    return r / (1.0 + r)


class OneEuroFilter:
    """(C,) value per call at increasing times -> (C,) filtered value, channels independent."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config if config is not None else OneEuroConfig()
        if not isinstance(self.config, OneEuroConfig):
            raise TypeError(f"expected OneEuroConfig, got {type(self.config).__name__}")
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next value passes through unchanged and seeds the state."""
        self._t_s: float | None = None
        self._x: np.ndarray | None = None  # (C,) last filtered value
        self._dx: np.ndarray | None = None  # (C,) last filtered speed, units/s

    def __call__(self, values: np.ndarray, t_s: float) -> np.ndarray:
        """Filter one frame `values` (C,) taken at time `t_s` (seconds, strictly increasing)."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"expected one frame of shape (C,), got {x.shape}")
        if not self.config.enabled:
            return x.astype(np.float32)
        if self._x is None or self._t_s is None:
            self._t_s, self._x, self._dx = float(t_s), x.copy(), np.zeros_like(x)
            return x.astype(np.float32)
        if x.shape != self._x.shape:
            raise ValueError(f"frame has {x.shape[0]} channels, the filter holds {self._x.size}")
        dt_s = float(t_s) - self._t_s
        if not dt_s > 0:
            raise ValueError(f"times must increase: got {t_s} after {self._t_s}")
        cfg = self.config
        dx = (x - self._x) / dt_s
        self._dx = self._dx + _alpha(cfg.d_cutoff_hz, dt_s) * (dx - self._dx)
        cutoff_hz = cfg.min_cutoff_hz + cfg.beta * np.abs(self._dx)  # (C,) per-channel cutoff
        self._x = self._x + _alpha(cutoff_hz, dt_s) * (x - self._x)
        self._t_s = float(t_s)
        return self._x.astype(np.float32)
