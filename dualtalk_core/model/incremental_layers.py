"""The layers of the DualTalk network, one frame at a time, with the caches that make it exact.

Each class takes the weights of one PyTorch module of a trained `DualTalkModel` and computes
that module's output for the newest frame from cached projections of the frames before it,
the very sums the whole-clip module computes (`model/incremental.py` chains them).

Why numpy: a frame is a handful of (96,)-wide rows, where the per-call overhead, not the
arithmetic, is the cost: ~5 us a call in PyTorch against ~1.5 us in numpy (measured here),
over ~150 operations a frame. Shapes: a frame is a (D,) row; caches are (n, D); heads are
split as (n, H, D / H).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import erf, expit

if TYPE_CHECKING:
    from torch import nn

_SQRT_HALF = np.float32(math.sqrt(0.5))


def _array(t: "nn.Parameter") -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * np.float32(0.5) * (np.float32(1.0) + erf(x * _SQRT_HALF))


class Linear:
    """y = W x + b with the weights of an nn.Linear (or any weight/bias pair)."""

    def __init__(self, weight: "nn.Parameter", bias: "nn.Parameter") -> None:
        self.wt, self.b = np.ascontiguousarray(_array(weight).T), _array(bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.wt + self.b


class LayerNorm:
    def __init__(self, norm: "nn.LayerNorm") -> None:
        self.w, self.b, self.eps = _array(norm.weight), _array(norm.bias), float(norm.eps)
        self.inv_n = 1.0 / len(self.w)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        centred = x - float(x.sum()) * self.inv_n  # scalars in Python: cheaper than np.mean
        scale = 1.0 / math.sqrt(float(centred @ centred) * self.inv_n + self.eps)
        return centred * (self.w * np.float32(scale)) + self.b


class RowCache:
    """Rows appended over time, addressed by absolute frame index; rows more than `keep`
    behind the newest are dropped (an attention reads [i - span, i + lookahead] only)."""

    def __init__(self, width: int, keep: int | None) -> None:
        self.keep = keep
        self._rows = np.zeros((16 if keep is None else 2 * keep + 8, width), np.float32)
        self._capacity = len(self._rows)
        self.start = 0  # absolute index of _rows[0]
        self.end = 0  # one past the last appended row

    def append(self, row: np.ndarray) -> None:
        n = self.end - self.start
        if n == self._capacity:
            n = self._make_room(n)
        self._rows[n] = row
        self.end += 1

    def _make_room(self, n: int) -> int:
        if self.keep is None:  # unbounded (no span): grow
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
            self._capacity = len(self._rows)
            return n
        drop = n - self.keep
        self._rows[:self.keep] = self._rows[drop:n]
        self.start += drop
        return self.keep

    def rows(self, first: int, stop: int) -> np.ndarray:
        """(n, width) rows [first, stop), clipped to those kept."""
        first, stop = max(first, self.start), min(stop, self.end)
        return self._rows[first - self.start:stop - self.start]

    def row(self, i: int) -> np.ndarray:
        return self._rows[i - self.start]


class CachedAttention:
    """One nn.MultiheadAttention of the network over a stream of frames.

    Self-attention: `add_frame` projects a frame's query, key and value at once and keeps them
    until needed. Cross-attention: `add_keys` takes the key stream's frames and `query`
    projects the query when asked. `attend(q, i, last)` reads keys [i - span, last].
    """

    def __init__(self, mha: "nn.MultiheadAttention", span: int | None, lookahead: int) -> None:
        e = mha.embed_dim
        self.heads, self.head_dim = mha.num_heads, e // mha.num_heads
        self.qkv = Linear(mha.in_proj_weight, mha.in_proj_bias)
        self.q = Linear(mha.in_proj_weight[:e], mha.in_proj_bias[:e])
        self.kv = Linear(mha.in_proj_weight[e:], mha.in_proj_bias[e:])
        self.out = Linear(mha.out_proj.weight, mha.out_proj.bias)
        self.span, self.scale = span, np.float32(1.0 / math.sqrt(self.head_dim))
        self._heads = np.arange(self.heads)
        # the query spread block-diagonally over (H, H, D); only the diagonal is ever written
        self._blocks = np.zeros((self.heads, self.heads, self.head_dim), np.float32)
        keep = None if span is None else span + lookahead + 1
        self.queries, self.keys, self.values = (RowCache(e, keep) for _ in range(3))
        self.e = e

    def add_frame(self, x: np.ndarray) -> None:
        qkv = self.qkv(x)
        e = self.e
        self.queries.append(qkv[:e])
        self.keys.append(qkv[e:2 * e])
        self.values.append(qkv[2 * e:])

    def add_keys(self, x: np.ndarray) -> None:
        kv = self.kv(x)
        self.keys.append(kv[:self.e])
        self.values.append(kv[self.e:])

    def attend(self, q: np.ndarray, i: int, last_key: int) -> np.ndarray:
        """(E,) projected query of frame i -> (E,) output over keys [i - span, last_key]."""
        first = 0 if self.span is None else i - self.span
        h, d = self.heads, self.head_dim
        # Every head in one BLAS product: the query spread block-diagonally over (H, E).
        blocks = self._blocks
        blocks[self._heads, self._heads] = q.reshape(h, d) * self.scale
        scores = self.keys.rows(first, last_key + 1) @ blocks.reshape(h, -1).T  # (n, H)
        weights = np.exp(scores - scores.max(axis=0))
        weights /= weights.sum(axis=0)
        mixed = weights.T @ self.values.rows(first, last_key + 1)  # (H, E)
        return self.out(mixed.reshape(h, h, d)[self._heads, self._heads].reshape(-1))


class EncoderLayer:
    """A post-norm nn.TransformerEncoderLayer (ReLU) over the stream, lookahead `right`."""

    def __init__(self, layer: "nn.Module", span: int | None, right: int, width: int) -> None:
        self.attn = CachedAttention(layer.self_attn, span, right)
        self.right = right
        self.inputs = RowCache(width, None if span is None else span + right + 1)
        self.norm1, self.norm2 = LayerNorm(layer.norm1), LayerNorm(layer.norm2)
        self.ff1 = Linear(layer.linear1.weight, layer.linear1.bias)
        self.ff2 = Linear(layer.linear2.weight, layer.linear2.bias)
        self.next = 0  # next frame to output

    def add(self, x: np.ndarray) -> None:
        self.inputs.append(x)
        self.attn.add_frame(x)

    def ready(self, final: bool) -> bool:
        return self.next < self.inputs.end and (final or
                                                self.next + self.right <= self.inputs.end - 1)

    def output(self) -> tuple[int, np.ndarray]:
        """(i, (width,)) the next output: attention over the keys up to i + right that exist."""
        i, self.next = self.next, self.next + 1
        x = self.inputs.row(i)
        last = min(i + self.right, self.inputs.end - 1)
        h = self.norm1(x + self.attn.attend(self.attn.queries.row(i), i, last))
        return i, self.norm2(h + self.ff2(np.maximum(self.ff1(h), 0)))


class DecoderLayer:
    """A post-norm nn.TransformerDecoderLayer (ReLU), causal: tgt and memory at frame i."""

    def __init__(self, layer: "nn.Module", span: int | None) -> None:
        self.self_attn = CachedAttention(layer.self_attn, span, 0)
        self.cross = CachedAttention(layer.multihead_attn, span, 0)
        self.norms = (LayerNorm(layer.norm1), LayerNorm(layer.norm2), LayerNorm(layer.norm3))
        self.ff1 = Linear(layer.linear1.weight, layer.linear1.bias)
        self.ff2 = Linear(layer.linear2.weight, layer.linear2.bias)

    def __call__(self, x: np.ndarray, memory: np.ndarray, i: int) -> np.ndarray:
        self.self_attn.add_frame(x)
        self.cross.add_keys(memory)
        n1, n2, n3 = self.norms
        h = n1(x + self.self_attn.attend(self.self_attn.queries.row(i), i, i))
        h = n2(h + self.cross.attend(self.cross.q(h), i, i))
        return n3(h + self.ff2(np.maximum(self.ff1(h), 0)))


class LSTM:
    """A unidirectional multi-layer nn.LSTM stepped one frame at a time, state carried."""

    def __init__(self, lstm: "nn.LSTM") -> None:
        self.layers = [(Linear(getattr(lstm, f"weight_ih_l{n}"), getattr(lstm, f"bias_ih_l{n}")),
                        Linear(getattr(lstm, f"weight_hh_l{n}"), getattr(lstm, f"bias_hh_l{n}")))
                       for n in range(lstm.num_layers)]
        self.size = lstm.hidden_size
        self.reset()

    def reset(self) -> None:
        self.state = [(np.zeros(self.size, np.float32), np.zeros(self.size, np.float32))
                      for _ in self.layers]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = self.size
        for k, (ih, hh) in enumerate(self.layers):
            h, c = self.state[k]
            gates = ih(x) + hh(h)  # PyTorch's order: input, forget, cell, output
            i, f, o = expit(gates[:n]), expit(gates[n:2 * n]), expit(gates[3 * n:])
            c = f * c + i * np.tanh(gates[2 * n:3 * n])
            x = o * np.tanh(c)
            self.state[k] = (x, c)
        return x


class LogMel:
    """The lite front end's log-mel features (`audio_encoders.LogMel`) in numpy, for a few
    frames at a time: same window, FFT length, filter bank and scaling."""

    def __init__(self, log_mel: "nn.Module") -> None:
        self.window_len, self.hop_len = log_mel.window_len, log_mel.hop_len
        self.window = _array(log_mel.window).astype(np.float64)
        self.mel_basis = _array(log_mel.mel_basis).astype(np.float64)  # (n_freq, n_mels)
        self.hops = log_mel.hops_per_frame

    @property
    def context_samples(self) -> int:
        """Samples before a frame's start that its first STFT window reads."""
        return self.window_len - self.hop_len

    def __call__(self, audio: np.ndarray, n_frames: int, context: int = 0) -> np.ndarray:
        """(B, N) audio -> (B, n_frames, hops * n_mels) float32, as LogMel.forward.

        `audio` starts `context` samples before frame 0 (a stream's step passes the samples
        its first window reads, so no earlier frame is computed and thrown away); context
        it lacks, as at a clip's start, is zeros.
        """
        from dualtalk_core.units import SAMPLES_PER_FRAME

        want, pad = n_frames * SAMPLES_PER_FRAME, self.context_samples
        have = min(context, pad)
        audio = np.asarray(audio)[:, context - have:context + want]
        buf = np.zeros((len(audio), pad + want), np.float64)
        buf[:, pad - have:pad - have + audio.shape[1]] = audio
        windows = np.lib.stride_tricks.sliding_window_view(buf, self.window_len, axis=1)
        spec = np.fft.rfft(windows[:, ::self.hop_len] * self.window, axis=-1)
        mel = (spec.real ** 2 + spec.imag ** 2) @ self.mel_basis  # (B, T * hops, n_mels)
        logmel = (np.log10(np.maximum(mel, 1e-8)) + 4.0) / 4.0
        return logmel.reshape(len(buf), n_frames, -1).astype(np.float32)
