"""MP4 writing: N frames in -> N frames out, with a stereo audio stream of T / fps seconds."""
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from dualtalk_core.render.video import mix_stereo, write_conversation_video

SR = 16000


def frames(n: int, h: int = 96, w: int = 128, shade: int = 0) -> list[np.ndarray]:
    """Frames that differ (a moving bar), so an encoder cannot merge them."""
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 40 + shade, np.uint8)
        f[:, (4 * i) % w: (4 * i) % w + 4] = 230
        out.append(f)
    return out


def tone(seconds: float, hz: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def decoded_audio_seconds(path) -> tuple[float, int]:
    """Decode the audio track with imageio-ffmpeg's own ffmpeg; (seconds, channels)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    pcm = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar",
                          str(SR), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    info = subprocess.run([ffmpeg, "-i", str(path)], capture_output=True, text=True).stderr
    return len(pcm) / 2 / SR, 2 if "stereo" in info else 1


def test_frames_and_audio_round_trip(tmp_path):
    n = 37
    path = write_conversation_video(tmp_path / "talk.mp4", frames(n), frames(n, shade=60),
                                    tone(1.2, 220.0), tone(0.9, 330.0), SR, fps=25)
    n_read, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert n_read == n
    decoded = [f for f in imageio_ffmpeg.read_frames(str(path))]
    meta, pixels = decoded[0], decoded[1:]
    assert len(pixels) == n and meta["fps"] == 25 and meta["audio_codec"] == "aac"
    seconds, channels = decoded_audio_seconds(path)
    assert channels == 2
    assert abs(seconds - n / 25) < 0.03  # the audio is padded to the video's length


def test_generators_take_their_length_from_the_audio(tmp_path):
    """Iterators have no len(): T = ceil(N / (sr / fps)) frames, as in the design."""
    audio = tone(1.0, 200.0)  # 25 frames at 25 fps
    path = write_conversation_video(tmp_path / "gen.mp4", iter(frames(40)), iter(frames(40)),
                                    audio, audio[:SR // 2], SR, labels=None)
    assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == 25


def test_short_sources_fail_without_leaving_a_file(tmp_path):
    out = tmp_path / "short.mp4"
    with pytest.raises(ValueError, match="ran out after 5 of 10"):
        write_conversation_video(out, frames(10), iter(frames(5)), tone(0.4, 200.0),
                                 tone(0.4, 300.0), SR)
    assert not out.exists()


def test_bad_inputs_raise(tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="height"):
        write_conversation_video(out, frames(3, h=96), frames(3, h=64), tone(0.1, 1), tone(0.1, 1),
                                 SR)
    with pytest.raises(ValueError, match="uint8"):
        write_conversation_video(out, [np.zeros((8, 8, 3))], [np.zeros((8, 8, 3))],
                                 tone(0.1, 1), tone(0.1, 1), SR)
    with pytest.raises(ValueError, match="sample_rate"):
        write_conversation_video(out, frames(3), frames(3), tone(0.1, 1), tone(0.1, 1), 0)
    with pytest.raises(ValueError, match="mono"):
        write_conversation_video(out, frames(3), frames(3), np.zeros((2, 2, 2)), tone(0.1, 1), SR)


def test_mix_pans_pads_and_avoids_clipping():
    left, right = np.ones(100, np.float32), -np.ones(50, np.float32)
    mix = mix_stereo(left, right, 120, pan=1.0)
    assert mix.shape == (120, 2)
    assert np.allclose(mix[:50], [[0.99, -0.99]])  # fully panned, scaled below clipping
    assert np.allclose(mix[50:100], [[0.99, 0.0]])
    assert np.all(mix[100:] == 0.0)  # padded with silence
    centred = mix_stereo(left, np.zeros(1), 10, pan=0.0)
    assert np.allclose(centred[:, 0], centred[:, 1])
