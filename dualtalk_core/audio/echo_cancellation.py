"""Self-voice removal: the robot's own voice cleaned out of the partner microphone.

Why: the microphone that captures the partner also hears the robot's loudspeaker, so without
this the listening face reacts to the robot's own speech as if the partner spoke. The engine
already has that voice ("self audio", stamped with its playback time), which is exactly the
reference an acoustic echo canceller needs.

Library: WebRTC's AEC3 as bundled in the `livekit` wheel (`livekit.rtc.AudioProcessingModule`,
Apache-2.0, WebRTC's code BSD-3), chosen over speexdsp, webrtc-audio-processing (legacy AEC),
pyaec and NLMS filters (adaptfilt, pyroomacoustics) after measuring all of them on a corpus
conversation (docs/echo_cancellation.md): the highest echo reduction (ERLE 45.7 dB on the
default simulated room, 33.4 dB with a nonlinear loudspeaker, against 18.4 / 14.2 for
speexdsp), a prebuilt manylinux wheel (the others build from 2018-2019 source with swig),
deterministic, 0.07 ms of CPU per 10 ms. Its costs, measured: it attenuates the partner by
~11 dB while both speak (double talk: AEC3's residual-echo suppressor), high-passes the partner
(-31 dB at 62 Hz, -1.5 dB at 125 Hz), and its output lags its input by 8 ms
(`AEC3_DELAY_SAMPLES`).

Contract (16 kHz mono float32, full scale +-1; samples beyond it are clipped and counted):

    canceller = EchoCanceller()
    out = canceller.process(mic_block, reference_block)  # (N,), (N,) -> (N,), any N
    tail = canceller.flush()                             # end of stream: (LATENCY_SAMPLES,)
    # out + tail, less its first LATENCY_SAMPLES samples, is the cleaned mic sample for sample

`process` returns as many samples as it is given, LATENCY_SAMPLES (287 = 17.9 ms) late: AEC3
works on whole 10 ms frames and its output is 128 samples behind its input, so a sample is
final only once the rest of its frame and 128 samples more have arrived. `process_frames` is
the same canceller fed whole frames, its output only AEC3_DELAY_SAMPLES late: the streaming
engine uses it and writes each cleaned sample back at its own time (`streaming.echo_stage`).
`cancel_echo` cleans a whole clip with no delay at all. The reference must be what the
loudspeaker plays at the same instants as the microphone block (the echo reaches the
microphone after it, never before); AEC3 finds the acoustic delay itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dualtalk_core.units import SAMPLE_RATE_HZ, float_to_s16, s16_to_float

__all__ = ["AEC3_DELAY_SAMPLES", "EchoCanceller", "FRAME_SAMPLES", "LATENCY_SAMPLES",
           "cancel_echo"]

FRAME_SAMPLES = SAMPLE_RATE_HZ // 100  # WebRTC's audio processing takes exactly 10 ms frames
# AEC3 returns each sample 128 samples (8 ms) after it went in, wherever it sits in its frame:
# measured with impulses at several offsets (livekit 1.2.1); a test checks it.
AEC3_DELAY_SAMPLES = 128
# `process` with blocks of any length: a sample's frame may need 159 more samples, then 128.
LATENCY_SAMPLES = AEC3_DELAY_SAMPLES + FRAME_SAMPLES - 1


def _new_apm() -> Any:
    """A fresh WebRTC audio processing module with echo cancellation only (no noise
    suppression or gain control: the face model was trained on audio without them)."""
    try:
        from livekit import rtc
    except ImportError as exc:  # an optional dependency: only echo cancellation needs it
        raise ImportError("echo cancellation needs the livekit package: pip install -r "
                          "requirements.txt (livekit==1.2.1)") from exc
    return rtc.AudioProcessingModule(echo_cancellation=True)


def _check_pair(mic: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N,) float arrays of one length, finite -> the same as float32 (no copy if already)."""
    arrays = []
    for name, value in (("mic", mic), ("reference", reference)):
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{name} must be a float numpy array of samples at full scale "
                             f"+-1, got {type(value).__name__} "
                             f"{getattr(value, 'dtype', '')}".rstrip())
        if value.ndim != 1:
            raise ValueError(f"{name} must be one channel (N,), got shape {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} has NaN or infinite samples")
        arrays.append(value.astype(np.float32, copy=False))
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"mic and reference must be time-aligned blocks of one length, got "
                         f"{arrays[0].shape[0]} and {arrays[1].shape[0]} samples")
    return arrays[0], arrays[1]


class EchoCanceller:
    """Streaming echo canceller at 16 kHz with explicit state (see the module docstring).

    Either `process` (any block length, LATENCY_SAMPLES late, `flush` at the end) or
    `process_frames` (whole frames, AEC3_DELAY_SAMPLES late) after each `reset`: the two keep
    different buffers, so mixing them would misplace samples (ValueError).
    """

    def __init__(self) -> None:
        self.clipped_samples = 0  # input samples beyond full scale, clipped to +-1
        self.reset()

    def reset(self) -> None:
        """Forget the stream: a new AEC3 (it relearns the room within ~1 s of speech) and
        empty buffers; `clipped_samples` is kept."""
        self._apm = _new_apm()
        self._mode: str | None = None  # "process" or "frames": the first call decides
        self._pending = (np.zeros(0, np.int16), np.zeros(0, np.int16))  # < a frame of input
        # Output of AEC3 not yet returned by `process`, after LATENCY - DELAY samples of
        # silence: the start of the fixed latency.
        self._queue = np.zeros(LATENCY_SAMPLES - AEC3_DELAY_SAMPLES, np.float32)
        self._fed = 0  # input samples given to `process` since the reset

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """(N,) microphone and (N,) time-aligned loudspeaker samples -> (N,) float32 cleaned
        microphone samples, each LATENCY_SAMPLES after its input (silence before the first)."""
        mic16, ref16 = self._to_s16(mic, reference, "process")
        m = np.concatenate([self._pending[0], mic16])
        r = np.concatenate([self._pending[1], ref16])
        whole = len(m) - len(m) % FRAME_SAMPLES
        self._pending = (m[whole:], r[whole:])
        self._queue = np.concatenate([self._queue, self._run(m[:whole], r[:whole])])
        self._fed += len(mic16)
        out, self._queue = self._queue[:len(mic16)], self._queue[len(mic16):]
        return out

    def flush(self) -> np.ndarray:
        """End of stream: the last (LATENCY_SAMPLES,) cleaned samples (the last frame padded
        with silence), then `reset()`. All `process` outputs plus this, less the first
        LATENCY_SAMPLES, are the cleaned input sample for sample."""
        if self._mode == "frames":
            raise ValueError("flush() ends process() streams; pad process_frames() input "
                             "yourself, or reset()")
        # Feed silence until every input sample has come out of AEC3's 128-sample delay.
        total = -(-(self._fed + AEC3_DELAY_SAMPLES) // FRAME_SAMPLES) * FRAME_SAMPLES
        zeros = np.zeros(total - self._fed, np.int16)
        m = np.concatenate([self._pending[0], zeros])
        r = np.concatenate([self._pending[1], zeros])
        queue = np.concatenate([self._queue, self._run(m, r)])
        self.reset()
        return queue[:LATENCY_SAMPLES]

    def process_frames(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Whole 10 ms frames: (N,), (N,) with N a multiple of FRAME_SAMPLES -> (N,) float32,
        AEC3's output as it comes: output sample i is input sample i - AEC3_DELAY_SAMPLES
        cleaned (silence before the stream's first)."""
        return self._run(*self._to_s16(mic, reference, "frames"))

    def _to_s16(self, mic: np.ndarray, reference: np.ndarray,
                mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Checked blocks as int16 for `mode` ("process" or "frames"), clipped samples counted."""
        mic, reference = _check_pair(mic, reference)
        if mode == "frames" and len(mic) % FRAME_SAMPLES:
            raise ValueError(f"process_frames takes whole {FRAME_SAMPLES}-sample frames, got "
                             f"{len(mic)} samples; use process() for any length")
        if self._mode not in (None, mode):
            raise ValueError(f"this stream was started with {self._mode}(); call reset() "
                             f"before switching to {mode}()")
        self._mode = mode
        self.clipped_samples += int(np.count_nonzero(np.abs(mic) > 1.0)
                                    + np.count_nonzero(np.abs(reference) > 1.0))
        return float_to_s16(mic), float_to_s16(reference)

    def _run(self, mic16: np.ndarray, ref16: np.ndarray) -> np.ndarray:
        """Whole frames of int16 through AEC3: (N,), (N,) -> (N,) float32 (finite: int16)."""
        from livekit import rtc

        out = np.empty(len(mic16), np.int16)
        for i in range(0, len(mic16), FRAME_SAMPLES):
            frame = slice(i, i + FRAME_SAMPLES)
            self._apm.process_reverse_stream(rtc.AudioFrame(
                bytearray(ref16[frame].tobytes()), SAMPLE_RATE_HZ, 1, FRAME_SAMPLES))
            near = bytearray(mic16[frame].tobytes())  # cleaned in place
            # The streams are aligned by their stamps: no delay beyond the room's, which
            # AEC3 estimates itself.
            self._apm.set_stream_delay_ms(0)
            self._apm.process_stream(rtc.AudioFrame(near, SAMPLE_RATE_HZ, 1, FRAME_SAMPLES))
            out[frame] = np.frombuffer(near, np.int16)
        return s16_to_float(out)


def cancel_echo(mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A whole clip: (N,) microphone, (N,) loudspeaker -> (N,) float32 cleaned microphone,
    sample-aligned (no delay): what the streaming engine computes with echo cancellation on."""
    canceller = EchoCanceller()
    out = np.concatenate([canceller.process(mic, reference), canceller.flush()])
    return out[LATENCY_SAMPLES:]
