"""Scoring: every clip direction for the model and the baselines, means and undefined values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualtalk_core.evaluation import scoring
from scoring_corpus import MirrorModel, ZeroModel, write_scoring_corpus  # test/core helper


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scoring_corpus(tmp_path_factory.mktemp("corpus"))


def test_evaluate_model_scores_every_direction_and_method(corpus: Path) -> None:
    results = scoring.evaluate_model(MirrorModel(), corpus, "test", max_clips=1, progress=False)
    assert results["n_clips"] == 1 and results["n_directions"] == 2
    assert list(results["methods"]) == ["dualtalk", "speaker_only", "random",
                                        "nearest_motion", "mirror"]
    model, mirror = results["methods"]["dualtalk"], results["methods"]["mirror"]
    assert model["n"] == 2 and model["groups"] == mirror["groups"]
    assert set(results["gt"]["groups"]["EXP"]) == {"SID", "SID-DIM", "Var"}
    assert len(results["per_clip"]) == 2 * 5
    json.dumps(results, allow_nan=False)  # strict JSON


def test_a_constant_prediction_leaves_rpcc_undefined(corpus: Path) -> None:
    """Pearson of a constant block is undefined: left out of the mean and counted."""
    results = scoring.evaluate_model(ZeroModel(), corpus, "test", baselines=False, max_clips=1,
                                     progress=False)
    exp = results["methods"]["dualtalk"]
    assert exp["groups"]["EXP"]["rPCC"] is None and exp["undefined"]["EXP"]["rPCC"] == 2
    assert all(row["EXP"]["rPCC"] is None for row in results["per_clip"])
