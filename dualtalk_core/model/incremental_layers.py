"""The layers of the DualTalk network, one frame at a time, with the caches that make it exact.

Each class takes the weights of one PyTorch module of a trained `DualTalkModel` and computes
that module's output for the newest frame from cached projections of the frames before it,
the very sums the whole-clip module computes (`model/incremental.py` chains them).

Why numpy: a frame is a handful of (96,)-wide rows, where the per-call overhead, not the
arithmetic, is the cost: ~5 us a call in PyTorch against ~1.5 us in numpy (measured here),
over ~150 operations a frame (onnxruntime, tried on a chain of such layers: ~0.9 us a node
against ~1.2 us a numpy call, not worth a second implementation). So the count of calls is
what is cut: both speakers' rows go through one batched product, an LSTM layer's input and
recurrent products are one, the modulation is folded into the head and the score scale into
the query projection. Shapes: a frame is a (D,) row; caches are (n, D); heads are split as
(n, H, D / H).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit, ndtr

if TYPE_CHECKING:
    from torch import nn


def _array(t: "nn.Parameter | np.ndarray") -> np.ndarray:
    if isinstance(t, np.ndarray):
        return t.astype(np.float32)
    return t.detach().cpu().numpy().astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x): two calls where 0.5 x (1 + erf(x / sqrt 2)) takes five."""
    return x * ndtr(x)


class Linear:
    """y = W x + b with the weights of an nn.Linear (or any weight/bias pair)."""

    def __init__(self, weight: "nn.Parameter | np.ndarray",
                 bias: "nn.Parameter | np.ndarray") -> None:
        self.wt, self.b = np.ascontiguousarray(_array(weight).T), _array(bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.wt + self.b


class PairLinear:
    """Two Linears of the same shape, one per speaker, in one batched product: the two
    audio paths' rows cost one call, not two (at a frame's width the call is the cost)."""

    def __init__(self, first: Linear, second: Linear) -> None:
        self.wt = np.stack([first.wt, second.wt])  # (2, in, out)
        self.b = np.stack([first.b, second.b])[:, None, :]  # (2, 1, out)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(2, n, in) -> (2, n, out)."""
        return x @ self.wt + self.b


def folded_head(modulation: Linear, scale: float, head: Linear) -> Linear:
    """head(x + scale * modulation(x)) as one Linear: both are affine, so their composition
    is one matrix, made in float64 (one product a frame instead of two)."""
    mod_wt, mod_b = modulation.wt.astype(np.float64), modulation.b.astype(np.float64)
    head_wt, head_b = head.wt.astype(np.float64), head.b.astype(np.float64)
    folded_wt = (np.eye(len(mod_wt)) + scale * mod_wt) @ head_wt  # (in, out)
    return Linear(folded_wt.T, scale * mod_b @ head_wt + head_b)


class LayerNorm:
    def __init__(self, norm: "nn.LayerNorm") -> None:
        self.w, self.b, self.eps = _array(norm.weight), _array(norm.bias), float(norm.eps)
        self.inv_n = 1.0 / len(self.w)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        centred = x - float(np.add.reduce(x)) * self.inv_n  # Python scalars: cheaper than mean
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
    in one row until needed. Cross-attention: `add_keys` takes the key stream's frames and `q`
    projects the query when asked. `attend(q, i, last)` reads keys [i - span, last]. The
    1/sqrt(head_dim) score scale is folded into the query projection.
    """

    def __init__(self, mha: "nn.MultiheadAttention", span: int | None, lookahead: int,
                 self_attention: bool) -> None:
        e = mha.embed_dim
        self.heads, self.head_dim = h, d = mha.num_heads, e // mha.num_heads
        scale = np.ones((3 * e, 1), np.float32)
        scale[:e] = 1.0 / math.sqrt(d)
        weight, bias = _array(mha.in_proj_weight) * scale, _array(mha.in_proj_bias) * scale[:, 0]
        first = 0 if self_attention else e  # the cache holds q, k, v (self) or k, v (cross)
        self.project = Linear(weight[first:], bias[first:])  # a frame -> its cached row
        self.q = Linear(weight[:e], bias[:e])
        self.out = Linear(mha.out_proj.weight, mha.out_proj.bias)
        self.span = span
        self._k, self._v = slice(e - first, 2 * e - first), slice(2 * e - first, 3 * e - first)
        # The query spread block-diagonally over (H, H, D), flat; only the diagonal is written:
        # element (h, h, j) of head h's query. `mixed` (H, E) has the same layout.
        self._blocks = np.zeros(h * h * d, np.float32)
        self._blocks_2d = self._blocks.reshape(h, h * d)  # (H, E), a view of the blocks
        self._diagonal = (np.arange(h)[:, None] * (h * d + d) + np.arange(d)).reshape(-1)
        keep = None if span is None else span + lookahead + 1
        self.cache = RowCache(3 * e - first, keep)

    def add_frame(self, x: np.ndarray) -> None:
        """A frame's projections: its query, key and value (self) or key and value (cross)."""
        self.cache.append(self.project(x))

    add_keys = add_frame

    def query(self, i: int) -> np.ndarray:
        """(E,) self-attention: frame i's projected query."""
        return self.cache.row(i)[:self._k.start]

    def attend(self, q: np.ndarray, i: int, last_key: int) -> np.ndarray:
        """(E,) projected query of frame i -> (E,) output over keys [i - span, last_key]."""
        first = 0 if self.span is None else i - self.span
        # Every head in one BLAS product: the query spread block-diagonally over (H, E). Scores
        # are (H, n), so the softmax reduces along contiguous rows (~3x cheaper than columns).
        diagonal = self._diagonal
        self._blocks[diagonal] = q
        rows = self.cache.rows(first, last_key + 1)
        scores = self._blocks_2d @ rows[:, self._k].T  # (H, n)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        mixed = weights @ rows[:, self._v]  # (H, E)
        return self.out(mixed.reshape(-1)[diagonal])


class EncoderLayer:
    """A post-norm nn.TransformerEncoderLayer (ReLU) over the stream, lookahead `right`."""

    def __init__(self, layer: "nn.Module", span: int | None, right: int, width: int) -> None:
        self.attn = CachedAttention(layer.self_attn, span, right, self_attention=True)
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
        h = self.norm1(x + self.attn.attend(self.attn.query(i), i, last))
        return i, self.norm2(h + self.ff2(np.maximum(self.ff1(h), 0)))


class DecoderLayer:
    """A post-norm nn.TransformerDecoderLayer (ReLU), causal: tgt and memory at frame i."""

    def __init__(self, layer: "nn.Module", span: int | None) -> None:
        self.self_attn = CachedAttention(layer.self_attn, span, 0, self_attention=True)
        self.cross = CachedAttention(layer.multihead_attn, span, 0, self_attention=False)
        self.norms = (LayerNorm(layer.norm1), LayerNorm(layer.norm2), LayerNorm(layer.norm3))
        self.ff1 = Linear(layer.linear1.weight, layer.linear1.bias)
        self.ff2 = Linear(layer.linear2.weight, layer.linear2.bias)

    def __call__(self, x: np.ndarray, memory: np.ndarray, i: int) -> np.ndarray:
        self.self_attn.add_frame(x)
        self.cross.add_keys(memory)
        n1, n2, n3 = self.norms
        h = n1(x + self.self_attn.attend(self.self_attn.query(i), i, i))
        h = n2(h + self.cross.attend(self.cross.q(h), i, i))
        return n3(h + self.ff2(np.maximum(self.ff1(h), 0)))


class LSTM:
    """A unidirectional multi-layer nn.LSTM stepped one frame at a time, state carried.

    Each layer's input and recurrent products are one product over [x, h], and its gates are
    reordered (input, forget, output | cell) so one sigmoid and one tanh cover them."""

    def __init__(self, lstm: "nn.LSTM") -> None:
        n = self.size = lstm.hidden_size
        order = np.r_[0:2 * n, 3 * n:4 * n, 2 * n:3 * n]  # PyTorch's i, f, g, o -> i, f, o, g
        self.layers = []
        for k in range(lstm.num_layers):
            weight = np.concatenate([_array(getattr(lstm, f"weight_ih_l{k}")),
                                     _array(getattr(lstm, f"weight_hh_l{k}"))], axis=1)
            bias = _array(getattr(lstm, f"bias_ih_l{k}")) + _array(getattr(lstm, f"bias_hh_l{k}"))
            self.layers.append(Linear(weight[order], bias[order]))
        self.reset()

    def reset(self) -> None:
        self.state = [(np.zeros(self.size, np.float32), np.zeros(self.size, np.float32))
                      for _ in self.layers]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = self.size
        for k, gates_of in enumerate(self.layers):
            h, c = self.state[k]
            gates = gates_of(np.concatenate([x, h]))
            sig = expit(gates[:3 * n])
            c = sig[n:2 * n] * c + sig[:n] * np.tanh(gates[3 * n:])
            x = sig[2 * n:] * np.tanh(c)
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
        step = buf.strides[1]  # every hop_len-th window of window_len samples, as strides
        windows = np.lib.stride_tricks.as_strided(
            buf, (len(buf), n_frames * self.hops, self.window_len),
            (buf.strides[0], self.hop_len * step, step), writeable=False)
        spec = np.fft.rfft(windows * self.window, axis=-1)
        mel = (spec.real ** 2 + spec.imag ** 2) @ self.mel_basis  # (B, T * hops, n_mels)
        logmel = (np.log10(np.maximum(mel, 1e-8)) + 4.0) / 4.0
        return logmel.reshape(len(buf), n_frames, -1).astype(np.float32)
