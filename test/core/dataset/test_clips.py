"""Corpus clips: file layouts, length checks and trimming, clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from corpora import write_arkit_clip  # test/core helper
from dualtalk_core.dataset import clips, windows
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE, get_rig

torch.set_num_threads(1)
ARKIT = list(ARKIT_BLENDSHAPES + HEAD_POSE)


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
