"""Frame-by-frame inference of a causal DualTalk network: the same outputs, nothing recomputed.

A causal lite network (bounded `lookahead_frames`, unidirectional LSTM, log-mel front end) lets
frame k depend on input frames up to k + lookahead only. So each new input frame (both voices'
log-mel features and the partner's face) completes what it can, layer after layer: the audio
convolution keeps its last inputs, every attention keeps the queries, keys and values it has
computed, the LSTM keeps its state (`incremental_layers`). With `attention_span_frames` the
caches have a fixed size. The outputs equal whole-clip `DualTalkModel.forward` on the same
input to float rounding (a test: <= 1e-5 over clips longer than the span, with role switches).
"""
from __future__ import annotations

import numpy as np

from dualtalk_core.model.incremental_layers import (LSTM, CachedAttention, DecoderLayer,
                                                    EncoderLayer, Linear, PairLinear, _array,
                                                    _gelu, folded_head)
from dualtalk_core.model.network import DualTalkModel


class IncrementalDualTalk:
    """Feed frames in order with `push`; outputs come as soon as their lookahead has arrived.

    `flush()` ends the stream as whole-clip inference ends a clip: the missing future is the
    convolution's zero padding and attention over the keys that exist.
    """

    def __init__(self, model: DualTalkModel) -> None:
        cfg = model.config
        if cfg.front_end != "logmel" or cfg.lookahead_frames is None or cfg.lstm_bidirectional:
            raise ValueError("incremental inference needs a causal log-mel network "
                             "(bounded lookahead_frames, unidirectional LSTM)")
        model.eval()
        self.n_channels = model.n_channels
        self.conv_right = model.plan["audio_conv"]
        self.span = cfg.attention_span_frames
        enc = model.joint_encoder
        speakers = (enc.audio_encoder1, enc.audio_encoder2)
        self._inputs = PairLinear(*(Linear(e.input.weight, e.input.bias) for e in speakers))
        self.kernel = enc.audio_encoder1.conv.kernel_size[0]
        # Each conv as one matmul over its (in, kernel) window, flattened: weight (out, in * k).
        self._convs = PairLinear(*(Linear(e.conv.weight.reshape(e.conv.weight.shape[0], -1),
                                          e.conv.bias) for e in speakers))
        self._projection = Linear(enc.audio_projection.weight, enc.audio_projection.bias)
        mlp = enc.blendshape_encoder
        self._motion = (Linear(mlp[0].weight, mlp[0].bias), Linear(mlp[2].weight, mlp[2].bias))
        self._residual = model.temporal_enhancer.audio_residual
        self._cross = model.temporal_enhancer.cross_attention
        self._lstm = LSTM(model.temporal_enhancer.temporal_lstm)
        width = 2 * cfg.feature_dim
        self._encoder_layers = [
            (layer, r) for layer, r in zip(model.interaction_module.interaction_encoder.layers,
                                           model.plan["interaction_layers"])]
        self._width = width
        self._self_attn_module = model.interaction_module.self_attention
        self._decoder_modules = list(model.synthesis_module.synthesis_decoder.layers)
        synth = model.synthesis_module
        self._head = folded_head(
            Linear(synth.modulation_layer.weight, synth.modulation_layer.bias),
            float(synth.modulation_scale),
            Linear(synth.blendshape_predictor.weight, synth.blendshape_predictor.bias))
        self._hidden = _array(enc.audio_encoder1.input.bias).shape[0]
        self.reset()

    @property
    def delay_frames(self) -> int:
        """Input frames needed past an output frame: the model's lookahead in frames."""
        return self.conv_right + sum(layer.right for layer in self._layers)

    def reset(self) -> None:
        """Forget the stream: caches emptied, LSTM state zero."""
        span = self.span
        self._windows = np.zeros((2, self._hidden, self.kernel), np.float32)  # zeros: no input
        self._faces: list[np.ndarray] = []  # faces waiting for their audio frame
        self.frames_in = 0
        self._conv_next = 0  # next frame the convolution outputs
        self._enhancer = CachedAttention(self._cross, span, 0, self_attention=False)
        self._lstm.reset()
        self._layers = [EncoderLayer(layer, span, r, self._width)
                        for layer, r in self._encoder_layers]
        self._self_attn = CachedAttention(self._self_attn_module, span, 0, self_attention=True)
        self._decoders = [DecoderLayer(d, span) for d in self._decoder_modules]

    def push(self, mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(2, n, dim) log-mel of [self, partner] and (n, C) partner faces of the next n input
        frames -> (m, C) output frames that became computable (m may be 0)."""
        out: list[np.ndarray] = []
        hidden = _gelu(self._inputs(np.asarray(mel, np.float32)))  # (2, n, hidden)
        for j in range(hidden.shape[1]):
            self._windows[:, :, :-1] = self._windows[:, :, 1:]
            self._windows[:, :, -1] = hidden[:, j]
            self._faces.append(np.asarray(faces[j], np.float32))
            self.frames_in += 1
            if self._conv_next <= self.frames_in - 1 - self.conv_right:
                out += self._frame(self._conv_next, shift=0)
                self._conv_next += 1
        return self._stack(out)

    def flush(self) -> np.ndarray:
        """End of input: (m, C) every remaining output frame, as whole-clip inference gives."""
        out: list[np.ndarray] = []
        shift = 0
        while self._conv_next < self.frames_in:  # the conv pads the missing future with zeros
            shift += 1
            out += self._frame(self._conv_next, shift)
            self._conv_next += 1
        out += self._drain(0, final=True)
        return self._stack(out)

    def _stack(self, rows: list[np.ndarray]) -> np.ndarray:
        return np.stack(rows) if rows else np.zeros((0, self.n_channels), np.float32)

    def _frame(self, i: int, shift: int) -> list[np.ndarray]:
        """Frame i's audio features (its conv window complete; `shift` future frames missing
        at the end of input), the enhancer and LSTM, then every layer as far as it can go."""
        own, other = self._audio_features(shift)
        first, second = self._motion
        motion = np.maximum(second(np.maximum(first(self._faces.pop(0)), 0)), 0)
        self._enhancer.add_keys(motion)
        x = self._enhancer.attend(self._enhancer.q(other), i, i)
        if self._residual:
            x = x + other
        self._layers[0].add(np.concatenate([own, self._lstm(x)]))  # (2d,)
        return self._drain(0, final=False)

    def _audio_features(self, shift: int) -> np.ndarray:
        """(2, d) both speakers' projected conv outputs, the windows moved back by `shift`
        frames with zeros past the input's end (the conv's zero padding)."""
        windows = self._windows
        if shift:
            windows = np.concatenate([windows[:, :, shift:],
                                      np.zeros((2, windows.shape[1], shift), np.float32)], axis=2)
        conv = self._convs(windows.reshape(2, 1, -1))  # (2, 1, out)
        return self._projection(_gelu(conv[:, 0]))

    def _drain(self, level: int, final: bool) -> list[np.ndarray]:
        """Outputs of interaction layer `level` whose keys have all arrived, passed on down the
        stack; the synthesis frames that result. `final` (end of input): every remaining
        output, one whole layer before the next, so each sees all the keys there will be."""
        out: list[np.ndarray] = []
        layer, deeper = self._layers[level], level + 1 < len(self._layers)
        while layer.ready(final):
            i, h = layer.output()
            if not deeper:
                out.append(self._synthesis(h, i))
                continue
            self._layers[level + 1].add(h)
            if not final:
                out += self._drain(level + 1, final=False)
        if final and deeper:
            out += self._drain(level + 1, final=True)
        return out

    def _synthesis(self, x: np.ndarray, i: int) -> np.ndarray:
        """Self-attention, decoder, modulation and head for frame i (all causal)."""
        self._self_attn.add_frame(x)
        x = self._self_attn.attend(self._self_attn.query(i), i, i)  # dropout: identity
        memory = x
        for decoder in self._decoders:
            x = decoder(x, memory, i)
        return self._head(x)  # the modulation folded in: head(x + scale * modulation(x))
