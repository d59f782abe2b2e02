"""A seeded room echo of the robot's own voice at the partner microphone, and how much of it a
canceller removes (ERLE).

Why simulate: no recordings of this robot's loudspeaker and microphone exist here, and echo
cancellation must be measured on a known echo. The model is the usual one for acoustic echo
tests: the loudspeaker's signal (optionally driven into a soft `tanh` clip, as small speakers
do) is convolved with a room impulse response - a direct path after `delay_ms`, then a tail of
Gaussian noise decaying 60 dB over `rt60_ms` - scaled to `gain_db` and given optional white
noise. Everything is a pure function of the settings and `seed`.

    # (N,) reference at 16 kHz -> (N,) echo as the microphone hears it
    echo = simulate_echo(own_voice, RoomEcho(delay_ms=30, rt60_ms=300, gain_db=-6))
    mic = partner_voice + echo
    erle_db(echo, canceller_output_on_echo_only)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve, stft

from dualtalk_core.units import SAMPLE_RATE_HZ

__all__ = ["CONVERGENCE_S", "RoomEcho", "active_frames", "band_levels_db", "erle_db",
           "impulse_response", "simulate_echo", "speech_distortion_db"]

# ERLE is measured after this much of the signal: an adaptive canceller starts knowing nothing
# of the room and needs speech to learn it (WebRTC's AEC3 converged within ~1 s of speech on
# the corpus's voices; 2 s leaves margin for a clip that starts with a pause).
CONVERGENCE_S = 2.0
# Speech distortion is judged on what a listener (and the face model's log-mel front end) hears:
# 40 mel-spaced band levels every 10 ms, 25 ms windows, 60-7600 Hz.
N_BANDS, HOP, WINDOW, BAND_HZ = 40, 160, 400, (60.0, 7600.0)
# A 10 ms frame of speech is active within this many dB of the signal's loudest frame.
ACTIVE_RANGE_DB = 40.0


@dataclass(frozen=True)
class RoomEcho:
    """One room: how the robot's voice reaches the partner microphone (16 kHz)."""

    delay_ms: float = 30.0  # loudspeaker -> microphone direct path and playout offset
    rt60_ms: float = 300.0  # reverberation time: the tail decays 60 dB in this time
    gain_db: float = -6.0  # level of the echo's direct path relative to the reference
    direct_to_reverb_db: float = 3.0  # energy of the direct path over that of the tail
    nonlinearity: float = 0.0  # loudspeaker drive into tanh: 0 = linear, 1 = mild clipping
    noise_dbfs: float = -math.inf  # white noise added at the microphone (dB full scale RMS)
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {"delay_ms": (0.0, 1000.0), "rt60_ms": (0.0, 3000.0),
                  "gain_db": (-80.0, 20.0), "direct_to_reverb_db": (-30.0, 60.0),
                  "nonlinearity": (0.0, 10.0)}
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and lo <= value <= hi):
                raise ValueError(f"RoomEcho.{name} must be a number in [{lo:g}, {hi:g}], "
                                 f"got {value!r}")
        if not (self.noise_dbfs == -math.inf or -150.0 <= self.noise_dbfs <= 0.0):
            raise ValueError(f"RoomEcho.noise_dbfs must be -inf or in [-150, 0] dBFS, got "
                             f"{self.noise_dbfs!r}")


def impulse_response(room: RoomEcho, rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """(L,) float64 room impulse response: a direct path of amplitude 10^(gain_db / 20) at
    `delay_ms`, then a noise tail decaying 60 dB over `rt60_ms` (cut at that point)."""
    delay = round(room.delay_ms * rate_hz / 1000)
    tail_n = round(room.rt60_ms * rate_hz / 1000)
    h = np.zeros(delay + 1 + tail_n)
    direct = 10.0 ** (room.gain_db / 20.0)
    h[delay] = direct
    if tail_n:
        rng = np.random.default_rng([room.seed, 1])
        t = np.arange(1, tail_n + 1) / rate_hz
        # 60 dB of amplitude decay (a factor 1000) over rt60: exp(-6.91 t / rt60)
        tail = rng.standard_normal(tail_n) * np.exp(-math.log(1000.0) * t / (room.rt60_ms / 1e3))
        energy = direct ** 2 / 10.0 ** (room.direct_to_reverb_db / 10.0)
        h[delay + 1:] = tail * math.sqrt(energy / float(np.sum(tail ** 2)))
    return h


def simulate_echo(reference: np.ndarray, room: RoomEcho,
                  rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """(N,) float reference (what the loudspeaker plays) -> (N,) float32 echo at the mic."""
    x = np.asarray(reference, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError(f"reference must be (N,) finite samples, got shape {x.shape}")
    if room.nonlinearity > 0:  # a soft clip with unit slope at 0: quiet sounds stay linear
        x = np.tanh(room.nonlinearity * x) / room.nonlinearity
    echo = fftconvolve(x, impulse_response(room, rate_hz))[:len(x)] if len(x) else x
    if room.noise_dbfs > -math.inf:
        rng = np.random.default_rng([room.seed, 2])
        echo = echo + rng.standard_normal(len(x)) * 10.0 ** (room.noise_dbfs / 20.0)
    return echo.astype(np.float32)


def erle_db(mic_echo_only: np.ndarray, output: np.ndarray, skip_s: float = CONVERGENCE_S,
            rate_hz: int = SAMPLE_RATE_HZ) -> float:
    """Echo return loss enhancement (dB): 10 log10 of the echo's power at the microphone over
    the residual's power in the canceller's output, both from `skip_s` on (convergence time).

    `mic_echo_only` must hold only the echo (no partner speech), and `output` the canceller's
    output for it, sample-aligned. A residual of exactly zero gives +inf.
    """
    mic = np.asarray(mic_echo_only, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    if mic.ndim != 1 or mic.shape != out.shape:
        raise ValueError(f"mic_echo_only and output must be (N,) of one length, got "
                         f"{mic.shape} and {out.shape}")
    start = round(skip_s * rate_hz)
    if not 0 <= start < len(mic):
        raise ValueError(f"skip_s={skip_s} leaves no samples of a {len(mic) / rate_hz:.2f} s "
                         "signal")
    echo, residual = float(np.sum(mic[start:] ** 2)), float(np.sum(out[start:] ** 2))
    if echo == 0.0:
        raise ValueError("mic_echo_only has no echo after skip_s: ERLE is undefined")
    return math.inf if residual == 0.0 else 10.0 * math.log10(echo / residual)


def band_levels_db(x: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """(N,) samples -> (N_BANDS, T) mel-band power levels in dB, one column per 10 ms."""
    f, _, spec = stft(np.asarray(x, np.float64), rate_hz, nperseg=WINDOW,
                      noverlap=WINDOW - HOP, boundary=None, padded=False)
    mel = 2595.0 * np.log10(1.0 + np.asarray(BAND_HZ) / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(mel[0], mel[1], N_BANDS + 2) / 2595.0) - 1.0)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.clip(np.minimum((f - lo) / (mid - lo), (hi - f) / (hi - mid)), 0.0, None)
    return 10.0 * np.log10(bank @ np.abs(spec) ** 2 + 1e-10)


def active_frames(x: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """(N,) samples -> (T,) bool: 10 ms frames (as `band_levels_db`) whose loudest band is
    within ACTIVE_RANGE_DB of the signal's loudest: where it speaks (or echoes)."""
    loud = band_levels_db(x, rate_hz).max(axis=0)
    return loud > loud.max() - ACTIVE_RANGE_DB


def speech_distortion_db(clean: np.ndarray, output: np.ndarray, skip_s: float = CONVERGENCE_S,
                         mask: np.ndarray | None = None,
                         rate_hz: int = SAMPLE_RATE_HZ) -> tuple[float, float]:
    """(mean |level difference|, mean level difference) in dB of `output` against the `clean`
    speech it should be, over mel bands and the 10 ms frames where `clean` is active (and
    `mask`, (T,) bool, allows) from `skip_s` on. A pure gain of g dB gives (|g|, g)."""
    ref, out = band_levels_db(clean, rate_hz), band_levels_db(output, rate_hz)
    if ref.shape != out.shape:
        raise ValueError(f"clean and output must be (N,) of one length, got {np.shape(clean)} "
                         f"and {np.shape(output)}")
    loud = ref.max(axis=0)
    active = loud > loud.max() - ACTIVE_RANGE_DB
    active[:round(skip_s * rate_hz / HOP)] = False
    if mask is not None:
        if np.shape(mask) != active.shape:
            raise ValueError(f"mask must be (T,) = {active.shape} bool, got {np.shape(mask)}")
        active &= np.asarray(mask, bool)
    if not active.any():
        raise ValueError("no active speech frame to compare (after skip_s, within mask)")
    diff = (out - ref)[:, active]
    return float(np.mean(np.abs(diff))), float(np.mean(diff))
