"""The verdict: means against each baseline, per-direction counts and bootstrap intervals."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.evaluation import verdict
from scoring_corpus import constant_row, verdict_results  # test/core helper


def test_verdict_compares_means_and_counts_directions() -> None:
    results = verdict_results()  # model 1, 1, 5 (mean 2.33) against the ablation's 2, 2, 0.5
    v = verdict.verdict(results)
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
    results["methods"]["speaker_only"]["groups"] = constant_row(3.0)
    assert verdict.verdict(results)["ahead_of_every_baseline"]
    assert verdict.verdict(results)["listens"]


def test_mean_difference_interval_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(3)
    ours, theirs = rng.normal(0.0, 1.0, 400), rng.normal(0.0, 1.0, 400) + 0.3
    low, high = verdict.mean_difference_ci(ours, theirs)
    diff = ours - theirs
    half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert low == pytest.approx(diff.mean() - half, abs=0.2 * half)
    assert high == pytest.approx(diff.mean() + half, abs=0.2 * half)
    assert high < 0  # a lead of 0.3 sd over 400 directions is clear
    assert verdict.mean_difference_ci(ours, theirs) == (low, high)  # seeded
    assert verdict.mean_difference_ci(ours[:1], theirs[:1]) is None
    assert verdict.mean_difference_ci(np.ones(5), np.zeros(5)) == (1.0, 1.0)
