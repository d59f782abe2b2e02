"""DIM baselines and the speaker-only ablation on a tiny ARKit-layout corpus."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dualtalk_core.evaluation import baselines
from dualtalk_core.model.network_inputs import StatsPair
from scoring_corpus import FRAMES, RIG, motion, write_scoring_corpus  # test/core helper


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scoring_corpus(tmp_path_factory.mktemp("corpus"))


class Recorder:
    """Records what it was called with; returns zeros of the model's shape."""

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray,
                waveform_stats: StatsPair | None = None) -> np.ndarray:
        self.args = (self_audio, partner_audio, partner_motion)
        return np.zeros((math.ceil(len(self_audio) / 640), RIG.dim), np.float32)


def _inputs(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(2, frames * 640 - 10)).astype(np.float32)
    return audio[0], audio[1], motion(rng, frames)


def test_train_motion_has_both_directions(corpus: Path) -> None:
    pairs = baselines.load_train_motion(corpus, "train", "arkit52")
    assert len(pairs) == 2 * len(FRAMES["train"])
    assert [len(own) for own, _ in pairs] == [n for n in FRAMES["train"] for _ in (1, 2)]
    np.testing.assert_array_equal(pairs[0][0], pairs[1][1])  # speaker 1: self, then partner
    assert len(baselines.load_train_motion(corpus, "train", max_clips=2)) == 4
    with pytest.raises(ValueError, match="expected 'flame56'"):
        baselines.load_train_motion(corpus, "train", "flame56")


def test_random_frames_are_seeded_train_frames(corpus: Path) -> None:
    pairs = baselines.load_train_motion(corpus, "train")
    own, other, partner = _inputs(33)
    a = baselines.RandomFrames(pairs, seed=3).predict(own, other, partner)
    b = baselines.RandomFrames(pairs, seed=3).predict(own, other, partner)
    assert a.shape == (33, RIG.dim)
    np.testing.assert_array_equal(a, b)
    pool = np.concatenate([p for p, _ in pairs])
    assert all((pool == row).all(axis=1).any() for row in a)


def test_nearest_motion_retrieves_the_matching_segment(corpus: Path) -> None:
    pairs = baselines.load_train_motion(corpus, "train")
    nearest = baselines.NearestMotion(pairs, window_frames=10, pool_frames=5)
    own_gt, partner = pairs[2]  # clip01, speaker 1 as target: 80 frames
    audio = np.zeros(len(partner) * 640, np.float32)
    np.testing.assert_array_equal(nearest.predict(audio, audio, partner), own_gt)
    own, other, motion = _inputs(23)  # not a multiple of the window
    assert nearest.predict(own, other, motion).shape == (23, RIG.dim)
    with pytest.raises(ValueError, match="multiple of pool_frames"):
        baselines.NearestMotion(pairs, window_frames=12, pool_frames=5)


def test_mirror_and_speaker_only() -> None:
    own, other, partner = _inputs(20)
    np.testing.assert_array_equal(baselines.MirrorPartner().predict(own, other, partner), partner)
    recorder = Recorder()
    out = baselines.SpeakerOnly(recorder, "arkit52").predict(own, other, partner)
    assert out.shape == (20, RIG.dim)
    np.testing.assert_array_equal(recorder.args[0], own)
    assert recorder.args[1].shape == other.shape and not recorder.args[1].any()
    np.testing.assert_array_equal(recorder.args[2], np.zeros_like(partner))  # ARKit neutral = 0
    with pytest.raises(ValueError, match="partner_motion"):
        baselines.MirrorPartner().predict(own, other, partner[0])
