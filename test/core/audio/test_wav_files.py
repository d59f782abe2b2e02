"""WAV files: any rate and channel count in, 16 kHz mono float32 out."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from dualtalk_core.audio import wav_files
from dualtalk_core.audio.pcm import decode_pcm
from dualtalk_core.audio.resampling import StreamResampler, resample_to_16k


def write_wav(path: Path, seconds: float, rate: int = 16000, seed: int = 0,
              stereo: bool = False) -> np.ndarray:
    """Write int16 noise; return the float signal it encodes (mono)."""
    rng = np.random.default_rng(seed)
    pcm = rng.integers(-20000, 20000, size=(round(seconds * rate), 2 if stereo else 1))
    wavfile.write(path, rate, pcm.astype(np.int16).squeeze())
    return (pcm / 32768.0).mean(axis=1).astype(np.float32)


@pytest.mark.parametrize("rate", [22050, 48000])
def test_wav_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    write_wav(tmp_path / "a.wav", 1.3, rate=rate, stereo=True)
    audio = wav_files.read_wav(tmp_path / "a.wav")
    n_in = round(1.3 * rate)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == math.ceil(n_in * 16000 / rate)


def test_int16_scaling_and_stereo_average(tmp_path: Path) -> None:
    expected = write_wav(tmp_path / "a.wav", 0.1, stereo=True)
    np.testing.assert_allclose(wav_files.read_wav(tmp_path / "a.wav"), expected, atol=1e-6)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_training_audio_is_what_the_streaming_inputs_decode(tmp_path: Path, rate: int) -> None:
    """A WAV read for training equals the same PCM decoded as the node decodes AudioChunks."""
    write_wav(tmp_path / "a.wav", 1.0, rate=rate, stereo=True)
    pcm_bytes = wavfile.read(tmp_path / "a.wav")[1].astype("<i2").tobytes()
    training = wav_files.read_wav(tmp_path / "a.wav")
    # The node: AudioChunk bytes -> pcm.decode_pcm -> the timeline's StreamResampler, in chunks.
    stream = StreamResampler(rate)
    step = 2 * 2 * 333  # 333 stereo int16 samples per chunk
    chunks = [stream.process(decode_pcm(pcm_bytes[i:i + step], "S16LE", 2))
              for i in range(0, len(pcm_bytes), step)]
    streamed = np.concatenate(chunks + [stream.flush()])
    # Whole clip: the very functions read_wav calls.
    whole = resample_to_16k(decode_pcm(pcm_bytes, "S16LE", 2), rate)
    np.testing.assert_array_equal(training, whole)
    assert streamed.shape == training.shape
    np.testing.assert_allclose(streamed, training, atol=2e-6)  # float32 rounding
