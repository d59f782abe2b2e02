"""Side-by-side conversation video: two faces, both voices mixed in, H.264 + AAC in an MP4.

imageio-ffmpeg ships its own ffmpeg binary, so this needs no system package. Frames are
streamed (iterables are consumed one frame at a time), so a long clip never sits in memory:
pass `FaceRenderer.frames(coeffs)` generators. The audio is padded or cut to the video's length
(T / fps seconds) so both streams end together; each voice is panned a little towards its face.
"""
from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sized
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from dualtalk_core.audio.wav_files import write_wav
from dualtalk_core.units import FRAME_RATE_HZ

LOG = logging.getLogger(__name__)


def mix_stereo(audio_left: np.ndarray, audio_right: np.ndarray, n_samples: int,
               pan: float = 0.3) -> np.ndarray:
    """Two mono voices -> (n_samples, 2) float32 stereo, padded with silence or cut.

    `pan` in [0, 1]: 0 puts both voices in the middle, 1 each fully on its own side. The mix is
    scaled down only if overlapping speech would clip.
    """
    if not 0.0 <= pan <= 1.0:
        raise ValueError(f"pan must be in [0, 1], got {pan}")
    out = np.zeros((n_samples, 2), np.float32)
    near, far = 0.5 * (1.0 + pan), 0.5 * (1.0 - pan)
    for voice, gains in ((audio_left, (near, far)), (audio_right, (far, near))):
        v = _mono(voice)[:n_samples]
        out[: len(v)] += v[:, None] * np.array(gains, np.float32)
    peak = float(np.abs(out).max()) if n_samples else 0.0
    if peak > 0.99:
        LOG.info("mixed audio peaks at %.2f; scaling it down to avoid clipping", peak)
        out *= 0.99 / peak
    return out


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, np.float32)
    if a.ndim == 2:  # (N, channels) -> average, as the data loader does
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise ValueError(f"expected mono audio (N,) or (N, channels), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or inf")
    return a


class _Banner:
    """The label strip drawn above the two faces (made once; Pillow ships with matplotlib)."""

    def __init__(self, widths: tuple[int, int], gap: int, labels: Sequence[str]) -> None:
        height = max(24, 2 * round(max(widths) / 32))
        self.image = np.full((height, sum(widths) + gap, 3), 24, np.uint8)
        try:
            from PIL import Image, ImageDraw, ImageFont
        except ImportError:
            LOG.warning("Pillow is not installed: the video has no labels")
            return
        img = Image.fromarray(self.image)
        draw = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=int(height * 0.6))
        x0 = 0
        for text, width in zip(labels, widths):
            box = draw.textbbox((0, 0), text, font=font)
            xy = (x0 + (width - (box[2] - box[0])) / 2, (height - (box[3] - box[1])) / 2 - box[1])
            draw.text(xy, text, fill=(235, 235, 235), font=font)
            x0 += width + gap
        self.image = np.asarray(img)


def _frames(source: Iterable[np.ndarray], side: str) -> Iterator[np.ndarray]:
    for frame in source:
        f = np.asarray(frame)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise ValueError(f"{side} frames must be (H, W, 3) uint8, got {f.shape} {f.dtype}")
        yield f


def _count_frames(frames_left: Iterable[np.ndarray], n_audio: int, sample_rate: int,
                  fps: float, n_frames: int | None) -> int:
    if n_frames is not None:
        return int(n_frames)
    if isinstance(frames_left, Sized):
        return len(frames_left)
    return math.ceil(n_audio * fps / sample_rate)  # the design's T = ceil(N / hop)


def write_conversation_video(
    path: str | Path, frames_left: Iterable[np.ndarray], frames_right: Iterable[np.ndarray],
    audio_left: np.ndarray, audio_right: np.ndarray, sample_rate: int, fps: float = FRAME_RATE_HZ,
    labels: Sequence[str] | None = ("Robot (DualTalk)", "Partner"),
    n_frames: int | None = None, pan: float = 0.3, quality: float = 7.0,
) -> Path:
    """Write an MP4 with the two faces side by side and both voices; returns the path.

    Frames: sequences, (T, H, W, 3) arrays or iterators of (H, W, 3) uint8, same height on
    both sides. The frame count T is `n_frames`, else len(frames_left), else the audio's
    length in frames; both frame sources must supply at least T frames. Audio: mono float
    arrays at `sample_rate`, cut or padded to T / fps seconds. `labels=None` drops the strip.
    """
    if int(sample_rate) <= 0 or fps <= 0:
        raise ValueError(f"sample_rate and fps must be positive, got {sample_rate}, {fps}")
    audio_l, audio_r = _mono(audio_left), _mono(audio_right)
    total = _count_frames(frames_left, max(len(audio_l), len(audio_r)), int(sample_rate), fps,
                          n_frames)
    if total <= 0:
        raise ValueError("nothing to write: zero frames")
    if labels is not None and len(labels) != 2:
        raise ValueError(f"labels must be two strings (left, right), got {labels!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stereo = mix_stereo(audio_l, audio_r, round(total * int(sample_rate) / fps), pan)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "mix.wav"
        write_wav(wav, stereo, int(sample_rate))
        try:
            _encode(path, _frames(frames_left, "left"), _frames(frames_right, "right"), total,
                    wav, fps, labels, quality)
        except BaseException:
            path.unlink(missing_ok=True)  # no half-written video left behind
            raise
    LOG.info("wrote %s: %d frames at %g fps with audio", path, total, fps)
    return path


def _encode(path: Path, left: Iterator[np.ndarray], right: Iterator[np.ndarray], total: int,
            wav: Path, fps: float, labels: Sequence[str] | None, quality: float) -> None:
    import imageio_ffmpeg

    first_l, first_r = next(left, None), next(right, None)
    if first_l is None or first_r is None:
        raise ValueError("a frame source is empty")
    if first_l.shape[0] != first_r.shape[0]:
        raise ValueError(f"left and right frames differ in height: {first_l.shape} vs "
                         f"{first_r.shape}")
    gap = 4
    banner = _Banner((first_l.shape[1], first_r.shape[1]), gap, labels).image if labels else None
    height = first_l.shape[0] + (0 if banner is None else banner.shape[0])
    width = first_l.shape[1] + gap + first_r.shape[1]
    canvas = np.full((height + height % 2, width + width % 2, 3), 24, np.uint8)  # yuv420p: even
    writer = imageio_ffmpeg.write_frames(
        str(path), (canvas.shape[1], canvas.shape[0]), fps=fps, codec="libx264",
        quality=quality, macro_block_size=1, audio_path=str(wav), audio_codec="aac",
        output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
    writer.send(None)  # start ffmpeg
    sent = 0
    try:
        for fl, fr in _chain((first_l, first_r), zip(left, right)):
            if sent == total:
                break
            _compose(canvas, banner, fl, fr, gap)
            writer.send(canvas)
            sent += 1
        if sent < total:
            raise ValueError(f"frame sources ran out after {sent} of {total} frames")
    finally:
        writer.close()


def _chain(first: tuple[np.ndarray, np.ndarray], rest: Iterator[tuple[np.ndarray, np.ndarray]]
           ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    yield first
    yield from rest


def _compose(canvas: np.ndarray, banner: np.ndarray | None, left: np.ndarray,
             right: np.ndarray, gap: int) -> None:
    """Draw one side-by-side frame into `canvas` in place (no per-frame allocation)."""
    top = 0 if banner is None else banner.shape[0]
    if banner is not None:
        canvas[:top, : banner.shape[1]] = banner
    h, wl = left.shape[:2]
    if right.shape[0] != h:
        raise ValueError(f"left and right frames differ in height: {left.shape} vs {right.shape}")
    canvas[top: top + h, :wl] = left
    canvas[top: top + h, wl + gap: wl + gap + right.shape[1]] = right
