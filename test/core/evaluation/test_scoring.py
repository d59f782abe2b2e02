"""Baselines and the evaluation pipeline on a tiny ARKit-layout corpus written to a temp folder."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from dualtalk_core.evaluation import baselines

from dualtalk_core.evaluation import scoring
from dualtalk_core.model.network import DualTalkModel
from dualtalk_core.rigs import get_rig

RIG = get_rig("arkit52")
FRAMES = {"train": (70, 80, 60), "test": (64, 50)}


def _motion(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Smooth, rig-plausible motion: blendshapes in [0, 1], head angles of a few degrees."""
    t = np.arange(frames)[:, None] / 25.0
    freq, phase = rng.uniform(0.2, 2.0, RIG.dim), rng.uniform(0, 2 * np.pi, RIG.dim)
    m = 0.5 + 0.4 * np.sin(2 * np.pi * freq * t + phase)
    m[:, -3:] = 0.1 * np.sin(2 * np.pi * freq[-3:] * t + phase[-3:])
    return m.astype(np.float32)


def _write_speaker(folder: Path, clip: str, speaker: int, motion: np.ndarray,
                   rng: np.random.Generator) -> None:
    samples = len(motion) * 640 - 100  # a partial last frame, as real recordings have
    audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * np.arange(samples) / 16000)
    wavfile.write(folder / f"{clip}_speaker{speaker}.wav", 16000, (audio * 32767).astype(np.int16))
    np.savez(folder / f"{clip}_speaker{speaker}.npz", coeffs=motion,
             names=np.array(RIG.names), rig="arkit52", fps=25)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for split, lengths in FRAMES.items():
        (root / split).mkdir()
        for i, frames in enumerate(lengths):
            for speaker in (1, 2):
                _write_speaker(root / split, f"clip{i:02d}", speaker, _motion(rng, frames), rng)
    return root


class MirrorModel:
    """A stand-in model (no torch): answers with the partner's motion."""

    class config:  # noqa: N801 - mimics `model.config.rig`
        rig = "arkit52"

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray) -> np.ndarray:
        return np.asarray(partner_motion, dtype=np.float32).copy()


class ZeroModel(MirrorModel):
    """A collapsed model: the neutral face whatever the input."""

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray) -> np.ndarray:
        return np.zeros_like(partner_motion, dtype=np.float32)


class Recorder:
    """Records what it was called with; returns zeros of the model's shape."""

    def predict(self, self_audio: np.ndarray, partner_audio: np.ndarray,
                partner_motion: np.ndarray) -> np.ndarray:
        self.args = (self_audio, partner_audio, partner_motion)
        return np.zeros((math.ceil(len(self_audio) / 640), RIG.dim), np.float32)


def _inputs(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(2, frames * 640 - 10)).astype(np.float32)
    return audio[0], audio[1], _motion(rng, frames)


# ---- baselines -------------------------------------------------------------------------------

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


# ---- evaluation ------------------------------------------------------------------------------

def test_evaluate_model_scores_every_direction_and_method(corpus: Path) -> None:
    results = scoring.evaluate_model(MirrorModel(), corpus, "test", max_clips=1, progress=False)
    assert results["n_clips"] == 1 and results["n_directions"] == 2
    assert list(results["methods"]) == ["dualtalk", "speaker_only", "random",
                                        "nearest_motion", "mirror"]
    model, mirror = results["methods"]["dualtalk"], results["methods"]["mirror"]
    assert model["n"] == 2 and model["groups"] == mirror["groups"]
    assert set(results["gt"]["groups"]["EXP"]) == {"SID", "SID-DIM", "Var"}
    assert len(results["per_clip"]) == 2 * 5
    table = scoring.format_table(results)
    assert "| FD JAW x1e3 |" in table and "| rPCC EXP x1e2 |" in table
    assert "| Mirror partner |" in table and "| GT |" in table
    json.dumps(results, allow_nan=False)  # strict JSON


def test_a_constant_prediction_leaves_rpcc_undefined(corpus: Path) -> None:
    """Pearson of a constant block is undefined: left out of the mean and counted."""
    results = scoring.evaluate_model(ZeroModel(), corpus, "test", baselines=False, max_clips=1,
                                     progress=False)
    exp = results["methods"]["dualtalk"]
    assert exp["groups"]["EXP"]["rPCC"] is None and exp["undefined"]["EXP"]["rPCC"] == 2
    assert all(row["EXP"]["rPCC"] is None for row in results["per_clip"])
    row = next(line for line in scoring.format_table(results).splitlines() if "DualTalk" in line)
    assert " - " in row and "e-06" not in row  # undefined shown as "-", collapsed SID as 0


def _row(value: float) -> dict[str, dict[str, float]]:
    return {g: {m: value for m in ("FD", "P-FD", "MSE", "rPCC")} for g in ("EXP", "JAW", "POSE")}


def test_verdict_compares_means_and_counts_directions() -> None:
    model_values, ablation_values = [1.0, 1.0, 5.0], [2.0, 2.0, 0.5]  # mean 2.33 vs 1.5
    per_clip = []
    for i, (ours, theirs) in enumerate(zip(model_values, ablation_values)):
        per_clip += [{"clip": f"c{i}", "target": 1, "method": "dualtalk", **_row(ours)},
                     {"clip": f"c{i}", "target": 1, "method": "speaker_only", **_row(theirs)},
                     {"clip": f"c{i}", "target": 1, "method": "mirror", **_row(9.0)}]
    per_clip[0]["JAW"]["rPCC"] = None  # an undefined value is left out of the count
    results = {"methods": {"dualtalk": {"groups": _row(7 / 3)},
                           "speaker_only": {"groups": _row(1.5)},
                           "mirror": {"groups": _row(9.0)}},
               "per_clip": per_clip}
    v = scoring.verdict(results)
    mirror_fd = next(c for c in v["cells"] if c["baseline"] == "mirror" and c["metric"] == "FD")
    assert mirror_fd["ahead"]
    assert (mirror_fd["directions_ahead"], mirror_fd["directions"]) == (3, 3)
    ablation_mse = next(c for c in v["cells"]
                        if c["baseline"] == "speaker_only" and c["metric"] == "MSE")
    assert not ablation_mse["ahead"] and ablation_mse["directions_ahead"] == 2  # mean vs count
    assert not v["ahead_of_every_baseline"] and not v["listens"]
    jaw_rpcc = next(c for c in v["listening"] if c["metric"] == "rPCC" and c["group"] == "JAW")
    assert (jaw_rpcc["directions_worse"], jaw_rpcc["directions"]) == (1, 2)
    assert mirror_fd["clearly_ahead"]  # every difference is -8 or -4
    assert -8.0 <= mirror_fd["mean_difference_ci"][0] <= mirror_fd["mean_difference_ci"][1] <= -4.0
    assert not ablation_mse["clearly_ahead"]  # differences -1, -1, +4.5: the sign is noise
    assert not v["clearly_ahead_of_every_baseline"] and not v["clearly_listens"]
    text = scoring.format_verdict(v)
    assert "| Mirror partner | ahead 3/3, clear |" in text
    assert "**behind** 2/3, within noise" in text
    assert "FD EXP: 2.333 -> 1.5 (x1), **not worse** (2/3, within noise)" in text
    results["methods"]["speaker_only"]["groups"] = _row(3.0)
    assert scoring.verdict(results)["ahead_of_every_baseline"]
    assert scoring.verdict(results)["listens"]


def test_mean_difference_interval_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(3)
    ours, theirs = rng.normal(0.0, 1.0, 400), rng.normal(0.0, 1.0, 400) + 0.3
    low, high = scoring.mean_difference_ci(ours, theirs)
    diff = ours - theirs
    half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert low == pytest.approx(diff.mean() - half, abs=0.2 * half)
    assert high == pytest.approx(diff.mean() + half, abs=0.2 * half)
    assert high < 0  # a lead of 0.3 sd over 400 directions is clear
    assert scoring.mean_difference_ci(ours, theirs) == (low, high)  # seeded
    assert scoring.mean_difference_ci(ours[:1], theirs[:1]) is None
    assert scoring.mean_difference_ci(np.ones(5), np.zeros(5)) == (1.0, 1.0)


def test_cli_end_to_end_with_the_lite_model(corpus: Path, tmp_path: Path) -> None:
    model_dir = DualTalkModel.from_preset("lite", device="cpu").save(tmp_path / "m")
    out = tmp_path / "eval"
    rc = scoring.main(["--data", str(corpus), "--model", str(model_dir), "--out", str(out),
                       "--baselines", "--max-clips", "1", "--device", "cpu", "--plots", "1"])
    assert rc == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["n_clips"] == 1 and summary["n_directions"] == 2
    exp = summary["methods"]["dualtalk"]["groups"]["EXP"]
    assert all(np.isfinite(exp[m]) for m in ("FD", "P-FD", "MSE", "SID", "Var"))
    assert "| DualTalk |" in (out / "table.md").read_text()
    assert "Ahead of every baseline on FD and MSE: **" in (out / "table.md").read_text()
    assert "| FD EXP offset x1 | FD EXP spread x1 |" in (out / "table.md").read_text()
    assert 0.0 <= exp["FD-offset"] <= exp["FD"]
    assert len(summary["verdict"]["cells"]) == 4 * 2 * 3  # 4 baselines, FD/MSE, 3 groups
    assert (out / "plots" / "clip00_speaker1.png").stat().st_size > 1000
    assert len((out / "per_clip.jsonl").read_text().splitlines()) == 2 * 5
    assert scoring.main(["--data", str(corpus), "--model", str(model_dir), "--out", str(out),
                         "--split", "nope", "--device", "cpu"]) == 2


def test_cli_reports_a_missing_model(corpus: Path, tmp_path: Path) -> None:
    assert scoring.main(["--data", str(corpus), "--model", str(tmp_path / "none"),
                         "--out", str(tmp_path / "o")]) == 2
