"""Training windows: every frame of every clip in both directions; batches padded and masked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from corpora import write_arkit_clip  # test/core helper
from dualtalk_core.audio.wav_files import read_wav
from dualtalk_core.dataset import windows
from dualtalk_core.model.waveform_norm import whole_clip_stats


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


def test_cache_can_be_disabled(tmp_path: Path) -> None:
    write_arkit_clip(tmp_path / "train", "a", frames=12)
    cached = windows.ConversationDataset(tmp_path, "train", window_frames=8)
    fresh = windows.ConversationDataset(tmp_path, "train", window_frames=8, cache=False)
    assert fresh._cache is None and len(fresh) == len(cached) == 4
    for i in range(len(fresh)):
        for key, value in cached[i].items():
            assert torch.equal(value, fresh[i][key])


def test_wav2vec2_windows_are_normalised_with_their_whole_files_statistics(tmp_path: Path):
    write_arkit_clip(tmp_path / "train", "a", frames=30, audio_frames=31)  # audio trimmed
    raw = windows.ConversationDataset(tmp_path, "train", window_frames=10)
    norm = windows.ConversationDataset(tmp_path, "train", window_frames=10,
                                       normalize_waveform=True)
    speaker1 = read_wav(tmp_path / "train" / "a_speaker1.wav")  # 31 frames: the whole file
    stats = whole_clip_stats(speaker1)
    assert norm.clip("a").waveform_stats[0] == stats == raw.clip("a").waveform_stats[0]
    i = next(i for i, w in enumerate(norm.windows) if w.target == 1 and w.start == 10)
    np.testing.assert_array_equal(norm[i]["self_audio"].numpy(),
                                  stats.apply(speaker1)[6400:12800])
    np.testing.assert_array_equal(raw[i]["self_audio"].numpy(), speaker1[6400:12800])
