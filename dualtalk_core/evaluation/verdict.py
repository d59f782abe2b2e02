"""Is the model ahead of each baseline, and does it listen? Read from `evaluate_model`'s
per-direction rows, with a paired bootstrap interval per cell that tells a lead from noise.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from dualtalk_core.evaluation.scoring import MODEL_KEY
from dualtalk_core.rigs import GROUPS

# What "ahead of a baseline" means in the verdict: lower FD and MSE (the and DIM's
# headline metrics), and, against the speaker-only ablation, that zeroing the partner raises
# P-FD and rPCC (the model uses what it hears and sees of the partner).
VERDICT_METRICS: tuple[str, ...] = ("FD", "MSE")
LISTENING_METRICS: tuple[str, ...] = ("P-FD", "rPCC")
ABLATION_KEY = "speaker_only"


# A lead in the mean is only as good as its distance from zero: the verdict also gives a paired
# bootstrap interval of the mean per-direction difference (model minus the other method).
CI_LEVEL = 0.95
CI_RESAMPLES = 2000


def _paired(per_clip: list[dict[str, Any]], key: str, group: str, metric: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """The model's and method `key`'s values on the directions where both are defined."""
    by_direction: dict[tuple[str, int], dict[str, float]] = {}
    for row in per_clip:
        value = row[group][metric]
        if value is not None and row["method"] in (MODEL_KEY, key):
            by_direction.setdefault((row["clip"], row["target"]), {})[row["method"]] = value
    pairs = [v for v in by_direction.values() if len(v) == 2]
    return (np.array([v[MODEL_KEY] for v in pairs], dtype=np.float64),
            np.array([v[key] for v in pairs], dtype=np.float64))


def mean_difference_ci(ours: np.ndarray, theirs: np.ndarray, seed: int = 0
                       ) -> tuple[float, float] | None:
    """`CI_LEVEL` paired bootstrap (percentile) interval of mean(ours - theirs) over directions;
    None with fewer than 2 pairs. Seeded: the same rows give the same interval."""
    diff = np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    if diff.size < 2:
        return None
    if np.all(diff == diff[0]):  # no spread to resample (bootstrap would warn)
        return float(diff[0]), float(diff[0])
    res = stats.bootstrap((diff,), np.mean, n_resamples=CI_RESAMPLES, vectorized=True,
                          confidence_level=CI_LEVEL, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _compare(per_clip: list[dict[str, Any]], key: str, group: str, metric: str
             ) -> dict[str, Any]:
    """Directions where the model is lower than method `key`, directions compared, the interval
    of the mean difference, and whether it lies wholly below zero ("clearly lower")."""
    ours, theirs = _paired(per_clip, key, group, metric)
    ci = mean_difference_ci(ours, theirs)
    return {"lower_in": int((ours < theirs).sum()), "directions": int(ours.size),
            "mean_difference_ci": None if ci is None else list(ci),
            "clearly_lower": ci is not None and ci[1] < 0}


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """Is the model ahead of every baseline (mean FD and MSE lower, per group), and does zeroing
    the partner make its P-FD and rPCC worse? With per-direction win counts, so a mean that
    leads by a hair can be told from one that leads on most clips."""
    methods, per_clip = results["methods"], results.get("per_clip", [])
    model = methods[MODEL_KEY]["groups"]
    cells: list[dict[str, Any]] = []
    for key in (k for k in methods if k != MODEL_KEY):
        for metric in VERDICT_METRICS:
            for g in GROUPS:
                ours, theirs = model[g].get(metric), methods[key]["groups"][g].get(metric)
                c = _compare(per_clip, key, g, metric)
                cells.append({"baseline": key, "metric": metric, "group": g, "model": ours,
                              "baseline_value": theirs, "ahead": _lower(ours, theirs),
                              "directions_ahead": c["lower_in"], "directions": c["directions"],
                              "mean_difference_ci": c["mean_difference_ci"],
                              "clearly_ahead": c["clearly_lower"]})
    listening: list[dict[str, Any]] = []
    if ABLATION_KEY in methods:
        ablated = methods[ABLATION_KEY]["groups"]
        for metric in LISTENING_METRICS:
            for g in GROUPS:
                ours, zeroed = model[g].get(metric), ablated[g].get(metric)
                c = _compare(per_clip, ABLATION_KEY, g, metric)
                listening.append({"metric": metric, "group": g, "model": ours,
                                  "partner_zeroed": zeroed,
                                  "worse_when_zeroed": _lower(ours, zeroed),
                                  "directions_worse": c["lower_in"],
                                  "directions": c["directions"],
                                  "mean_difference_ci": c["mean_difference_ci"],
                                  "clearly_worse_when_zeroed": c["clearly_lower"]})
    return {"ahead_of_every_baseline": all(c["ahead"] for c in cells),
            "listens": bool(listening) and all(c["worse_when_zeroed"] for c in listening),
            "clearly_ahead_of_every_baseline": all(c["clearly_ahead"] for c in cells),
            "clearly_listens": (bool(listening)
                                and all(c["clearly_worse_when_zeroed"] for c in listening)),
            "cells": cells, "listening": listening}


def _lower(ours: float | None, theirs: float | None) -> bool:
    return ours is not None and theirs is not None and ours < theirs
