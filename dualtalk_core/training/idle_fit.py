"""`dualtalk-fit-idle`: fit a checkpoint's idle motion (blinks, head sway) to the training split.

What is fitted is what the network leaves out, so the network runs over the training clips
first and each figure is the corpus' minus the network's:

- blink shape: the corpus' mean eyelid closure around a blink's onset (above the level just
  before it), cut where it has reopened;
- blink hazards per role: the per-frame probability that, after the refractory time (the
  corpus' 10th-percentile gap between blinks), tops the network's own blinks up to the
  corpus' rate in that role. Sampling is not linear in the hazard (the refractory time, the
  network's blinks reset the clock), so the hazards are found by simulating the process on the
  network's outputs and correcting them a few rounds;
- a floor under them: once the eyes have been open longer than the corpus' 90th-percentile gap
  (`floor_after_frames`), the hazard that alone gives FLOOR_SHARE of the corpus' rate. A
  network blinks at turn ends and stops in a long silence; people do not. An ungated floor
  also fired in the corpus' short gaps between turns, where the network's blinks already
  match the corpus' (measured: 2.03x the corpus' blinks there on test, the network alone
  1.76x);
- head sway: per head channel an AR(2) fit (least squares) to the corpus' head motion minus
  the network's, and per role an innovation scale that adds the variance the network lacks
  (corpus' within-role variance minus the network's), again set by simulation.

The file lands beside the weights (`idle_motion.json`); the streaming engine and `dualtalk-eval`
read it from there. Fit on `train`; choose on `val`; report `test`/`ood` (`dualtalk-eval`).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dualtalk_core.audio import voice_activity
from dualtalk_core.audio.voice_activity import ROLES
from dualtalk_core.dataset.clips import list_clips, load_clip
from dualtalk_core.evaluation.aliveness import blink_onsets
from dualtalk_core.model import idle_motion as idle
from dualtalk_core.rigs import HEAD_POSE, Rig, get_rig

log = logging.getLogger(__name__)

TEMPLATE_FRAMES = 12  # 480 ms from 2 frames before the onset: a blink has reopened by then
ROUNDS = 6  # simulation rounds that correct the hazards and innovation scales
FLOOR_SHARE = 0.75  # the floor alone gives this share of the corpus' rate in each role
FLOOR_AFTER_PERCENTILE = 90  # the floor waits for an open gap longer than 90 % of the corpus' gaps


class Directions:
    """The fitting set: per clip direction the corpus face, the network's face, the roles."""

    def __init__(self, network: Any, root: str | Path, split: str, max_clips: int | None,
                 progress: bool = True) -> None:
        self.rig = get_rig(network.config.rig)
        self.gt: list[np.ndarray] = []
        self.pred: list[np.ndarray] = []
        self.roles: list[np.ndarray] = []
        for name in tqdm(list_clips(root, split)[:max_clips], desc="network on " + split,
                         unit="clip", disable=not progress):
            clip = load_clip(root, split, name)
            for me in (0, 1):
                own, other = clip.audio[me], clip.audio[1 - me]
                pred = network.predict(own, other, clip.motion[1 - me])
                n = min(len(pred), len(clip.motion[me]))
                self.gt.append(clip.motion[me][:n].astype(np.float64))
                self.pred.append(pred[:n].astype(np.float64))
                self.roles.append(voice_activity.roles(own, other, n))
        if not self.gt:
            raise ValueError(f"no clips in {Path(root) / split}")

    def minutes(self) -> np.ndarray:
        """(3,) minutes per role."""
        counts = sum(np.bincount(r, minlength=len(ROLES)) for r in self.roles)
        return np.asarray(counts, np.float64) / 25.0 / 60.0


def _onsets(face: np.ndarray, rig: Rig) -> np.ndarray:
    onsets = blink_onsets(face, rig)
    if onsets is None:
        raise ValueError(f"rig {rig.name} has no eyelid channels {idle.BLINK_CHANNELS}")
    return onsets


def blink_rates(faces: list[np.ndarray], roles: list[np.ndarray], rig: Rig,
                minutes: np.ndarray) -> np.ndarray:
    """(3,) blinks per minute per role."""
    counts = np.zeros(len(ROLES))
    for face, r in zip(faces, roles):
        for k in _onsets(face, rig):
            counts[r[k]] += 1
    return counts / np.maximum(minutes, 1e-9)


def within_role_var(series: list[np.ndarray], roles: list[np.ndarray]) -> np.ndarray:
    """(3, H) variance per role of (T, H) series about each series' own mean, pooled."""
    s = np.zeros((len(ROLES), series[0].shape[1]))
    ss, n = np.zeros_like(s), np.zeros(len(ROLES))
    for x, r in zip(series, roles):
        x = x - x.mean(axis=0)
        for role in range(len(ROLES)):
            mine = x[r == role]
            s[role] += mine.sum(axis=0)
            ss[role] += (mine ** 2).sum(axis=0)
            n[role] += len(mine)
    n = np.maximum(n, 1)[:, None]
    return np.maximum(ss / n - (s / n) ** 2, 0.0)


def fit_template(gt: list[np.ndarray], rig: Rig) -> np.ndarray:
    """(L, B) mean closure above the pre-blink level, from 2 frames before each onset."""
    idx = [rig.names.index(n) for n in idle.BLINK_CHANNELS]
    rows = []
    for face in gt:
        lids = face[:, idx]
        for k in _onsets(face, rig):
            if k >= 4 and k + TEMPLATE_FRAMES - 2 <= len(face):
                rows.append(lids[k - 2:k - 2 + TEMPLATE_FRAMES] - lids[k - 4:k - 2].mean(axis=0))
    if not rows:
        raise ValueError("the corpus faces never blink: nothing to fit a blink on")
    template = np.clip(np.mean(rows, axis=0), 0.0, 1.0)
    peak = int(template.mean(axis=1).argmax())
    reopened = np.nonzero(template.mean(axis=1)[peak:] < 0.02)[0]
    return template[:peak + (reopened[0] if len(reopened) else len(template) - peak)]


def fit_ar2(residuals: list[np.ndarray]) -> np.ndarray:
    """(H, 2) least-squares AR(2) coefficients per channel of (T, H) series, pulled inside
    the stationarity triangle."""
    out = []
    for h in range(residuals[0].shape[1]):
        rows, target = [], []
        for x in residuals:
            x = x[:, h] - x[:, h].mean()
            rows.append(np.stack([x[1:-1], x[:-2]], axis=1))
            target.append(x[2:])
        a, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(target), rcond=None)
        a1, a2 = float(a[0]), float(np.clip(a[1], -0.98, 0.98))
        a1 = float(np.clip(a1, a2 - 0.98, 0.98 - a2))
        out.append([a1, a2])
    return np.asarray(out)


def _initial_hazard(add_per_min: np.ndarray, refractory: int) -> np.ndarray:
    """Per-frame hazard of a renewal process with `add_per_min` blinks/min after `refractory`."""
    frames_between = 25.0 * 60.0 / np.maximum(add_per_min, 1e-3)
    return np.clip(1.0 / np.maximum(frames_between - refractory, 1.0), 0.0, 1.0)


def calibrate(d: Directions, seed: int = 0) -> tuple[idle.IdleMotionParams, dict[str, Any]]:
    """Fit every parameter on `d`; returns them and the figures (corpus, network, with idle)."""
    rig = d.rig
    head_names = tuple(n for n in HEAD_POSE if n in rig.names)
    head_idx = np.array([rig.names.index(n) for n in head_names], np.int64)
    minutes = d.minutes()
    target_rate = blink_rates(d.gt, d.roles, rig, minutes)
    net_rate = blink_rates(d.pred, d.roles, rig, minutes)
    gaps = np.concatenate([np.diff(_onsets(g, rig)) for g in d.gt])
    refractory = int(np.percentile(gaps, 10)) if len(gaps) else 25
    floor_after = int(np.percentile(gaps, FLOOR_AFTER_PERCENTILE)) if len(gaps) else 110
    corpus_var = within_role_var([g[:, head_idx] for g in d.gt], d.roles)
    net_var = within_role_var([p[:, head_idx] for p in d.pred], d.roles)
    target_var = np.maximum(corpus_var - net_var, 0.0)
    template = fit_template(d.gt, rig)
    # Spontaneous blinks never stop: in a long silence the network stops and this floor blinks;
    # gated on a long gap, it leaves alone the short gaps where the network's own blinks
    # (at turn ends) already match the corpus. Alone, a blink comes every gate + 1 / hazard
    # frames after the template's last closed frame.
    floor = _initial_hazard(FLOOR_SHARE * target_rate, floor_after + len(template) - 1)
    hazard = _initial_hazard(np.maximum(target_rate - net_rate, 0.0), refractory)
    innovation = np.sqrt(target_var) * 0.1
    ar = fit_ar2([g[:, head_idx] - p[:, head_idx] for g, p in zip(d.gt, d.pred)])
    for _ in tqdm(range(ROUNDS), desc="calibrating", unit="round", leave=False):
        params = idle.IdleMotionParams(
            rig.name, idle.BLINK_CHANNELS, template, hazard, refractory, head_names, ar,
            np.minimum(innovation, idle.MAX_INNOVATION), floor, floor_after)
        sims = [idle.IdleMotion(params, seed + i).apply(p, r)
                for i, (p, r) in enumerate(zip(d.pred, d.roles))]
        rate = blink_rates(sims, d.roles, rig, minutes)
        hazard = np.clip(hazard * np.clip(target_rate / np.maximum(rate, 1e-3), 0.25, 4.0),
                         0.0, 1.0)
        added = within_role_var([s[:, head_idx] - p[:, head_idx] for s, p in zip(sims, d.pred)],
                                d.roles)
        innovation *= np.sqrt(np.clip(target_var / np.maximum(added, 1e-12), 0.05, 20.0))
    report = {"minutes": minutes.tolist(), "refractory_frames": refractory,
              "floor_after_frames": floor_after,
              "blinks_per_min": {"corpus": target_rate.tolist(), "network": net_rate.tolist(),
                                 "with_idle": rate.tolist()},
              "head_std_rad": {
                  "corpus": np.sqrt(corpus_var).tolist(), "network": np.sqrt(net_var).tolist(),
                  "with_idle": np.sqrt(within_role_var([s[:, head_idx] for s in sims],
                                                       d.roles)).tolist()}}
    return params, report


def _print_report(report: dict[str, Any], head_names: tuple[str, ...]) -> None:
    print("| figure | role | corpus | network | with idle motion |")
    print("|---|---|---|---|---|")
    for figure, unit in (("blinks_per_min", 1.0), ("head_std_rad", 57.29577951308232)):
        rows = report[figure]
        for r, role in enumerate(ROLES):
            cells = [rows[k][r] for k in ("corpus", "network", "with_idle")]
            if figure == "blinks_per_min":
                print(f"| blinks/min | {role} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
                continue
            for h, name in enumerate(head_names):
                print(f"| {name} std (deg) | {role} | "
                      + " | ".join(f"{c[h] * unit:.2f}" for c in cells) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dualtalk-fit-idle", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="checkpoint folder; idle_motion.json lands here")
    p.add_argument("--data", required=True, help="corpus folder with the split")
    p.add_argument("--split", default="train", help="split to fit on (default: train)")
    p.add_argument("--max-clips", type=int, default=60, help="clips to fit on (default: 60)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.max_clips < 1:
            raise ValueError(f"--max-clips must be >= 1, got {args.max_clips}")
        if not Path(args.model).is_dir():
            raise FileNotFoundError(f"--model {args.model}: not a checkpoint folder")
        from dualtalk_core.model import DualTalkModel

        network = DualTalkModel.load(args.model, device=args.device)
        d = Directions(network, args.data, args.split, args.max_clips)
        params, report = calibrate(d, args.seed)
        path = idle.save_idle_motion(params, args.model)
    except (OSError, ValueError, KeyError) as err:
        print(f"dualtalk-fit-idle: {err}", file=sys.stderr)
        return 2
    _print_report(report, params.head_channels)
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
