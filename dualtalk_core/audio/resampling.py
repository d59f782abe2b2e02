"""Resampling to the core's 16 kHz: whole clips and live chunks, with one filter.

Whole clips are resampled with `scipy.signal.resample_poly`; live chunks go through
`StreamResampler`, which evaluates the very same polyphase FIR sum incrementally. Feeding a clip
to the streaming resampler in chunks of any size and flushing gives the whole-clip output (to
float32 rounding), which is what lets the streaming engine reproduce offline results.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from dualtalk_core.audio.pcm import check_rate, to_mono_float32
from dualtalk_core.units import SAMPLE_RATE_HZ


EMIT_BLOCK = 8192  # outputs computed per step of `StreamResampler._emit`


@dataclass(frozen=True)
class _Polyphase:
    """The resample_poly FIR for one rate ratio, split into `up` phases of `taps` taps."""

    up: int
    down: int
    half_len: int
    phases: np.ndarray  # (up, taps): phases[p, k] = h[p + k * up] (0 past the filter's end)

    @property
    def taps(self) -> int:
        return self.phases.shape[1]


@functools.lru_cache(maxsize=16)
def _polyphase(rate_hz: int) -> _Polyphase:
    from scipy.signal import firwin  # 0.4 s to import: only once a stream needs resampling

    g = math.gcd(rate_hz, SAMPLE_RATE_HZ)
    up, down = SAMPLE_RATE_HZ // g, rate_hz // g
    # resample_poly's default design (its documented window and length), so both paths agree.
    half_len = 10 * max(up, down)
    h = firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
    taps = -(-len(h) // up)
    padded = np.zeros(taps * up)
    padded[: len(h)] = h
    return _Polyphase(up, down, half_len, padded.reshape(taps, up).T.copy())


def prepare(rates_hz: tuple[int, ...] = (44_100, 48_000)) -> None:
    """Design the filters of the common microphone rates now (importing scipy.signal: ~0.4 s
    with the GIL mostly held): a live process calls this off its critical path, so the first
    resampled chunk does not stall it."""
    for rate in rates_hz:
        _polyphase(check_rate(rate))


def resample_to_16k(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """Whole clip: (N,) mono at `sample_rate` -> (ceil(N * 16000 / rate),) float32 at 16 kHz."""
    audio = to_mono_float32(audio)
    rate = check_rate(sample_rate)
    if rate == SAMPLE_RATE_HZ:
        return audio.copy()
    from scipy.signal import resample_poly  # as in _polyphase

    g = math.gcd(rate, SAMPLE_RATE_HZ)
    out = resample_poly(audio.astype(np.float64), SAMPLE_RATE_HZ // g, rate // g)
    return out.astype(np.float32)


class StreamResampler:
    """Chunk-by-chunk resampling to 16 kHz that equals `resample_to_16k` of the concatenation.

    Output sample m is the FIR sum around input position m * down / up; it is emitted as soon as
    the last input sample it needs has arrived (a delay of `delay_s`, under 1 ms for common
    rates). `flush()` emits the rest as if the input ended there (zero padding, like the
    whole-clip function). State: the last `taps` input samples and the count of outputs given.
    """

    def __init__(self, sample_rate: float) -> None:
        self.rate_hz = check_rate(sample_rate)
        self._poly = _polyphase(self.rate_hz) if self.rate_hz != SAMPLE_RATE_HZ else None
        self.reset()

    @property
    def delay_s(self) -> float:
        """How far the newest output lags the newest input (the FIR's half length)."""
        if self._poly is None:
            return 0.0
        return self._poly.half_len / self._poly.up / self.rate_hz

    def reset(self) -> None:
        """Forget all input: the next sample starts a new clip."""
        taps = self._poly.taps if self._poly else 0
        self._history = np.zeros(taps, dtype=np.float64)  # zeros stand for "before the clip"
        self._history_start = -taps  # absolute input index of _history[0]
        self._n_in = 0
        self._n_out = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """(n,) mono float at the input rate -> (m,) float32 16 kHz samples now computable."""
        chunk = to_mono_float32(chunk)
        if self._poly is None:
            self._n_in += len(chunk)
            self._n_out += len(chunk)
            return chunk.copy()
        self._history = np.concatenate([self._history, chunk.astype(np.float64)])
        self._n_in += len(chunk)
        p = self._poly
        # Output m needs input up to index floor((m * down + half_len) / up).
        n_ready = (self._n_in * p.up - p.half_len - 1) // p.down + 1
        return self._emit(max(n_ready, self._n_out))

    def flush(self) -> np.ndarray:
        """Emit every remaining output of the input so far (zeros after it); then reset."""
        if self._poly is None:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self._poly.up // self._poly.down)  # ceil(n_in * up / down)
        self._history = np.concatenate([self._history, np.zeros(self._poly.taps)])
        out = self._emit(total)
        self.reset()
        return out

    def _emit(self, n_ready: int) -> np.ndarray:
        # In blocks: the (M, taps) gather of one long chunk would take memory in proportion
        # to its length (a 30 s chunk at 44.1 kHz: ~200 MB).
        blocks = [self._emit_block(min(n, n_ready))
                  for n in range(self._n_out + EMIT_BLOCK, n_ready + EMIT_BLOCK, EMIT_BLOCK)]
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)

    def _emit_block(self, n_ready: int) -> np.ndarray:
        p = self._poly
        assert p is not None
        m = np.arange(self._n_out, n_ready, dtype=np.int64)  # (M,) output indices
        pos = m * p.down + p.half_len
        newest = pos // p.up - self._history_start  # (M,) index into _history
        idx = newest[:, None] - np.arange(p.taps)[None, :]  # (M, taps)
        out = np.einsum("mk,mk->m", self._history[idx], p.phases[pos % p.up])
        self._n_out = n_ready
        self._trim()
        return out.astype(np.float32)

    def _trim(self) -> None:
        # Keep what the next output can still need: from its newest tap minus `taps`.
        p = self._poly
        assert p is not None
        first_needed = (self._n_out * p.down + p.half_len) // p.up - p.taps + 1
        drop = first_needed - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start += drop
