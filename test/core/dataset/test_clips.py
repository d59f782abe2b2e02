"""Corpus reader: file layouts, resampling, windows in both directions, clear errors."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from dualtalk_core.audio import wav_files
from dualtalk_core.dataset import clips, windows
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE, get_rig

torch.set_num_threads(1)
ARKIT = list(ARKIT_BLENDSHAPES + HEAD_POSE)


def write_wav(path: Path, seconds: float, rate: int = 16000, seed: int = 0,
              stereo: bool = False) -> np.ndarray:
    """Write int16 noise; return the float signal it encodes (mono)."""
    rng = np.random.default_rng(seed)
    pcm = rng.integers(-20000, 20000, size=(round(seconds * rate), 2 if stereo else 1))
    wavfile.write(path, rate, pcm.astype(np.int16).squeeze())
    return (pcm / 32768.0).mean(axis=1).astype(np.float32)


def write_arkit_clip(folder: Path, clip: str, frames: int, seed: int = 0,
                     audio_frames: int | None = None) -> None:
    """Both speakers of an ARKit-layout clip; motion values encode (speaker, frame, channel)."""
    folder.mkdir(parents=True, exist_ok=True)
    for spk in (1, 2):
        n = (audio_frames or frames) * 640
        wavfile.write(folder / f"{clip}_speaker{spk}.wav", 16000,
                      np.random.default_rng(seed + spk).integers(-9000, 9000, n).astype(np.int16))
        coeffs = spk * 1000 + np.arange(frames)[:, None] + np.arange(55)[None, :] / 100
        np.savez(folder / f"{clip}_speaker{spk}.npz", coeffs=coeffs.astype(np.float32),
                 names=np.array(ARKIT), rig="arkit52", fps=25)


def test_flame_layout_mapping(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    exp = rng.normal(size=(7, 50)).astype(np.float32)
    pose = rng.normal(size=(7, 6)).astype(np.float32)
    np.savez(tmp_path / "c_speaker1.npz", exp=exp, pose=pose, shape=np.zeros((7, 100)),
             cam=np.zeros((7, 3)), light=np.zeros((7, 9, 3)))
    motion, rig = clips.load_motion(tmp_path / "c_speaker1.npz")
    assert rig == "flame56" and motion.shape == (7, 56) and motion.dtype == np.float32
    np.testing.assert_array_equal(motion[:, :50], exp)
    np.testing.assert_array_equal(motion[:, 50:53], pose[:, 3:6])  # jaw
    np.testing.assert_array_equal(motion[:, 53:56], pose[:, 0:3])  # head
    flame = get_rig("flame56")
    assert list(flame.group_index("JAW")) == [50, 51, 52]


def test_arkit_layout_is_reordered_by_name(tmp_path: Path) -> None:
    coeffs = np.arange(3 * 55, dtype=np.float32).reshape(3, 55)
    order = np.random.default_rng(0).permutation(55)
    np.savez(tmp_path / "x.npz", coeffs=coeffs[:, order], names=np.array(ARKIT)[order])
    motion, rig = clips.load_motion(tmp_path / "x.npz")
    assert rig == "arkit52"
    np.testing.assert_array_equal(motion, coeffs)


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


def test_windows_slice_the_whole_clip_in_both_directions(tmp_path: Path) -> None:
    write_arkit_clip(tmp_path / "train", "a", frames=45)
    write_arkit_clip(tmp_path / "train", "b", frames=20, seed=5)
    ds = windows.ConversationDataset(tmp_path, "train", window_frames=20)
    # a: 45 frames -> [0,20) [20,40) [40,45); b: one window; times two directions.
    assert len(ds) == 2 * (3 + 1) and ds.rig == "arkit52"
    assert {(w.clip, w.start, w.end) for w in ds.windows} == {
        ("a", 0, 20), ("a", 20, 40), ("a", 40, 45), ("b", 0, 20)}
    for i, w in enumerate(ds.windows):
        clip, item = ds.clip(w.clip), ds[i]
        me, other = w.target - 1, 2 - w.target
        s, e = w.start, w.end
        np.testing.assert_array_equal(item["target"], clip.motion[me][s:e])
        np.testing.assert_array_equal(item["partner_motion"], clip.motion[other][s:e])
        np.testing.assert_array_equal(item["self_audio"], clip.audio[me][640 * s:640 * e])
        np.testing.assert_array_equal(item["partner_audio"], clip.audio[other][640 * s:640 * e])
        # The motion values encode speaker and frame: the swap and the offsets are real.
        assert item["target"][0, 0] == w.target * 1000 + s
        assert item["partner_motion"][0, 0] == (3 - w.target) * 1000 + s
    assert sorted(w.target for w in ds.windows if w.clip == "b") == [1, 2]


def test_overlap_and_collate_mask(tmp_path: Path) -> None:
    write_arkit_clip(tmp_path / "train", "a", frames=50)
    ds = windows.ConversationDataset(tmp_path, "train", window_frames=20, overlap_frames=5)
    assert sorted({(w.start, w.end) for w in ds.windows}) == [(0, 20), (15, 35), (30, 50)]
    assert windows.window_bounds(45, 20, 0)[-1] == (40, 45)
    short = ds[0] | {k: v[: len(v) // 2] for k, v in ds[0].items()}  # a 10-frame window
    batch = windows.collate_windows([ds[0], short])
    assert batch["self_audio"].shape == (2, 20 * 640) and batch["target"].shape == (2, 20, 55)
    assert batch["mask"].tolist() == [[True] * 20, [True] * 10 + [False] * 10]
    assert torch.all(batch["target"][1, 10:] == 0)
    assert torch.all(batch["self_audio"][1, 6400:] == 0)


def test_small_mismatch_trimmed_large_rejected(tmp_path: Path) -> None:
    write_arkit_clip(tmp_path / "train", "ok", frames=30, audio_frames=31)
    clip = clips.load_clip(tmp_path, "train", "ok")
    assert clip.frames == 30 and len(clip.audio[0]) == 30 * 640 == len(clip.audio[1])
    write_arkit_clip(tmp_path / "bad", "x", frames=30, audio_frames=40)
    with pytest.raises(ValueError, match="disagree"):
        clips.load_clip(tmp_path, "bad", "x")


def test_partial_last_frame_of_audio_is_padded(tmp_path: Path) -> None:
    write_arkit_clip(tmp_path / "train", "a", frames=10)
    wavfile.write(tmp_path / "train" / "a_speaker1.wav", 16000, np.ones(9 * 640 + 100, np.int16))
    clip = clips.load_clip(tmp_path, "train", "a")  # ceil(N/640) = 10 frames: no trimming
    assert clip.frames == 10 and len(clip.audio[0]) == 6400 and clip.audio[0][-1] == 0


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split folder not found"):
        clips.list_clips(tmp_path, "train")
    write_arkit_clip(tmp_path / "train", "a", frames=10)
    (tmp_path / "train" / "a_speaker2.npz").unlink()
    with pytest.raises(ValueError, match="a_speaker2.npz"):
        clips.list_clips(tmp_path, "train")
    with pytest.raises(ValueError, match="a_speaker2.npz"):
        clips.load_clip(tmp_path, "train", "a")
    write_arkit_clip(tmp_path / "mixed", "a", frames=10)
    np.savez(tmp_path / "mixed" / "b_speaker1.npz", exp=np.zeros((10, 50), np.float32),
             pose=np.zeros((10, 6), np.float32))
    for spk in (1, 2):
        wavfile.write(tmp_path / "mixed" / f"b_speaker{spk}.wav", 16000, np.zeros(6400, np.int16))
    (tmp_path / "mixed" / "b_speaker2.npz").write_bytes(
        (tmp_path / "mixed" / "b_speaker1.npz").read_bytes())
    with pytest.raises(ValueError, match="uses rig 'flame56', expected 'arkit52'"):
        windows.ConversationDataset(tmp_path, "mixed")
    write_arkit_clip(tmp_path / "ark", "a", frames=10)
    with pytest.raises(ValueError, match="expected 'flame56'"):
        windows.ConversationDataset(tmp_path, "ark", rig="flame56")
    np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
    with pytest.raises(ValueError, match="coeffs"):
        clips.load_motion(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="overlap"):
        windows.ConversationDataset(tmp_path, "train", window_frames=10, overlap_frames=10)


def test_cache_can_be_disabled(tmp_path: Path) -> None:
    write_arkit_clip(tmp_path / "train", "a", frames=12)
    cached = windows.ConversationDataset(tmp_path, "train", window_frames=8)
    fresh = windows.ConversationDataset(tmp_path, "train", window_frames=8, cache=False)
    assert fresh._cache is None and len(fresh) == len(cached) == 4
    for i in range(len(fresh)):
        for key, value in cached[i].items():
            assert torch.equal(value, fresh[i][key])
