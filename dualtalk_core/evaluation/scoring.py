"""The paper's Table 2 protocol on a corpus split: every clip scored for the model and the
baselines, in both directions (each speaker is the target once).

Each method gets the published inference: one whole-clip `predict` call, no smoothing. Metrics
are per clip and per group (`dualtalk_core.evaluation.metrics`), then averaged over clip
directions. What is read from the result: `verdict` (is the model ahead), `tables` (Markdown),
`plots` (trajectories); `eval_cli` is the `dualtalk-eval` command that writes them all.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from sklearn.cluster import KMeans
from tqdm import tqdm

from dualtalk_core.audio import voice_activity
from dualtalk_core.evaluation import aliveness, listener_events, listening, metrics
from dualtalk_core.evaluation import baselines as base
from dualtalk_core.dataset.clips import list_clips, load_clip, load_motion
from dualtalk_core.rigs import GROUPS, Rig, get_rig

log = logging.getLogger(__name__)

MODEL_KEY = "dualtalk"
LABELS: dict[str, str] = {
    MODEL_KEY: "DualTalk", "speaker_only": "Speaker only (partner zeroed)",
    "random": "Random frames", "nearest_motion": "Nearest motion", "mirror": "Mirror partner",
}
GT_METRICS: tuple[str, ...] = ("SID", "SID-DIM", "Var")
# DIM fits its SID clusters on all ground-truth frames of the set; a seeded subset of this many
# frames gives the same clusters to within k-means' own variation, at bounded cost.
DIM_SID_MAX_FRAMES = 100_000


def clip_directions(clip: Any
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(target speaker 1|2, self audio, partner audio, partner motion, gt motion) per direction."""
    for me in (0, 1):
        other = 1 - me
        yield me + 1, clip.audio[me], clip.audio[other], clip.motion[other], clip.motion[me]


def fit_dim_clusters(root: str | Path, split: str, clips: list[str], rig: Rig,
                     seed: int = 0) -> tuple[dict[str, KMeans], int]:
    """Per-group DIM-SID clusters on the split's ground-truth frames (both speakers)."""
    motions = [load_motion(Path(root) / split / f"{c}_speaker{s}.npz")[0]
               for c in clips for s in (1, 2)]
    frames = np.concatenate(motions)
    if len(frames) > DIM_SID_MAX_FRAMES:
        keep = np.random.default_rng(seed).choice(len(frames), DIM_SID_MAX_FRAMES, replace=False)
        frames = frames[np.sort(keep)]
    clusters = {g: metrics.fit_clusters(frames[:, rig.group_index(g)], metrics.SID_K[g])
                for g in GROUPS}
    return clusters, len(frames)


def build_methods(model: base.Predictor, rig: str, root: str | Path, with_baselines: bool,
                  train_split: str = "train", max_train_clips: int | None = 500,
                  seed: int = 0) -> dict[str, base.Predictor]:
    """The model, plus (optionally) the ablation and the DIM baselines, in table order."""
    methods: dict[str, base.Predictor] = {MODEL_KEY: model}
    if not with_baselines:
        return methods
    methods["speaker_only"] = base.SpeakerOnly(model, rig)
    if (Path(root) / train_split).is_dir():
        pairs = base.load_train_motion(root, train_split, rig, max_train_clips, seed)
        methods["random"] = base.RandomFrames(pairs, seed)
        methods["nearest_motion"] = base.NearestMotion(pairs)
    else:
        log.warning("no %s split under %s: skipping the random and nearest-motion baselines",
                    train_split, root)
    methods["mirror"] = base.MirrorPartner()
    return methods


def _gt_row(gt: np.ndarray, rig: Rig, clusters: dict[str, KMeans]) -> dict[str, dict[str, float]]:
    """Diversity of the ground truth itself (DIM's "GT" row): SID, DIM-SID and Var."""
    out = {}
    for g in GROUPS:
        x, k = gt[:, rig.group_index(g)], metrics.SID_K[g]
        out[g] = {"SID": metrics.sid(x, x, k), "SID-DIM": metrics.sid_dim(x, x, k, clusters[g]),
                  "Var": metrics.var(x)}
    return out


def _mean_rows(rows: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Mean over clip directions per group and metric; NaN (undefined rPCC) rows are skipped."""
    groups: dict[str, dict[str, float | None]] = {}
    undefined: dict[str, dict[str, int]] = {}
    for g in GROUPS:
        groups[g], undefined[g] = {}, {}
        for name in rows[0][g]:
            values = np.array([r[g][name] for r in rows], dtype=np.float64)
            finite = values[np.isfinite(values)]
            groups[g][name] = float(finite.mean()) if finite.size else None
            undefined[g][name] = int(values.size - finite.size)
    return {"n": len(rows), "groups": groups, "undefined": undefined}


def _finite_or_none(row: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """NaN (an undefined rPCC) -> None, so the per-clip rows are strict JSON."""
    return {g: {m: (v if math.isfinite(v) else None) for m, v in vals.items()}
            for g, vals in row.items()}


def _score_clip(clip: Any, methods: dict[str, base.Predictor], rig: Rig,
                clusters: dict[str, KMeans], alive: dict[str, aliveness.AlivenessStats],
                heard: Heard) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(target, method key or "gt", metrics) for both directions of one clip; the methods in
    `alive` (and "gt") also add their frames to its blink and head-motion figures, and the
    network what it does with the partner's voice to `heard`."""
    for target, own_audio, other_audio, other_motion, gt in clip_directions(clip):
        frame_roles = voice_activity.roles(own_audio, other_audio, len(gt))
        alive["gt"].add(gt, frame_roles)
        me = target - 1
        stats = (clip.waveform_stats[me], clip.waveform_stats[1 - me])  # whole files'
        heard.add(methods[MODEL_KEY], target, own_audio, other_audio, other_motion, gt,
                  frame_roles, stats)
        for key, method in methods.items():
            # (T', C); metrics truncate to the shortest, as the release's (wav2vec2: T' = T + 1
            # for some lengths, the release's frame count)
            pred = method.predict(own_audio, other_audio, other_motion, waveform_stats=stats)
            if key in alive:
                alive[key].add(pred, frame_roles)
            yield target, key, metrics.evaluate_clip(pred, gt, other_motion, rig, clusters)
        yield target, "gt", _gt_row(gt, rig, clusters)


class Heard:
    """What the network does with the partner: the voice-alone effect per direction and, where
    the corpus logs its listener events, the face's reactions to them."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.effects: list[float] = []
        self.responses = listener_events.EventResponses(rig)
        self.events: dict[int, list[dict]] | None = None  # the current clip's

    def add(self, model: base.Predictor, target: int, own_audio: np.ndarray,
            other_audio: np.ndarray, other_motion: np.ndarray, gt: np.ndarray,
            frame_roles: np.ndarray, stats: Any) -> None:
        # the network's own listening: the idle motion's per-role sampling is not listening
        network = getattr(model, "network", model)
        with_voice, silent = listening.neutral_face_runs(
            network, own_audio, other_audio, len(other_motion), self.rig, stats)
        effect = listening.effect_of(with_voice, silent, frame_roles, self.rig)
        if effect is not None:
            self.effects.append(effect)
        if self.events is not None:
            with_face = network.predict(own_audio, other_audio, other_motion,
                                        waveform_stats=stats)
            self.responses.add(self.events[target], frame_roles, gt,
                               {"with_face": with_face, "voice_alone": with_voice})


def _aliveness(alive: dict[str, aliveness.AlivenessStats]) -> dict[str, Any]:
    model, gt = alive[MODEL_KEY].summary(), alive["gt"].summary()
    return {"model": model, "gt": gt, "compare": aliveness.compare(model, gt),
            "ratio_range": list(aliveness.RATIO_RANGE)}


def evaluate_model(model: base.Predictor, root: str | Path, split: str = "test",
                   baselines: bool = True, max_clips: int | None = None,
                   train_split: str = "train", max_train_clips: int | None = 500,
                   seed: int = 0, progress: bool = True, rig: str | None = None) -> dict[str, Any]:
    """Score `model` (and the baselines) on every clip of `split` in both directions.

    Returns a JSON-ready dict: `methods[key]` = {label, n, groups: {EXP|JAW|POSE: {metric: mean}},
    undefined (NaN values left out)}, a `gt` row, `aliveness` (blinks, head motion per role),
    `voice_alone` (the partner's voice's effect with no partner face), `per_clip` rows and the
    clip counts. `rig` defaults to `model.config.rig`."""
    if max_clips is not None and max_clips < 1:
        raise ValueError(f"max_clips must be >= 1 or None, got {max_clips}")
    rig_obj = get_rig(rig or model.config.rig)  # type: ignore[attr-defined]
    clips = list_clips(root, split)[:max_clips]
    if not clips:
        raise ValueError(f"no clips in {Path(root) / split}; expected <clip>_speaker1.wav ...")
    clusters, n_cluster_frames = fit_dim_clusters(root, split, clips, rig_obj, seed)
    methods = build_methods(model, rig_obj.name, root, baselines, train_split,
                            max_train_clips, seed)
    rows: dict[str, list[dict[str, dict[str, float]]]] = {key: [] for key in [*methods, "gt"]}
    per_clip, skipped = [], []
    alive = {key: aliveness.AlivenessStats(rig_obj) for key in (MODEL_KEY, "gt")}
    heard = Heard(rig_obj)
    for name in tqdm(clips, desc=f"eval {split}", unit="clip", disable=not progress):
        clip = load_clip(root, split, name)
        if clip.rig != rig_obj.name:
            raise ValueError(f"clip {name!r} uses rig {clip.rig!r}, the model {rig_obj.name!r}")
        if clip.frames < max(metrics.SID_K.values()):
            log.warning("clip %r: %d frames, fewer than SID needs; skipped", name, clip.frames)
            skipped.append(name)
            continue
        heard.events = listener_events.read_events(root, split, name)
        for target, key, row in _score_clip(clip, methods, rig_obj, clusters, alive, heard):
            rows[key].append(row)
            if key != "gt":
                per_clip.append({"clip": name, "target": target, "method": key,
                                 **_finite_or_none(row)})
    if not rows["gt"]:
        raise ValueError(f"every clip of {Path(root) / split} was too short to score")
    return {
        "split": split, "data": str(root), "rig": rig_obj.name,
        "n_clips": len(clips) - len(skipped), "n_directions": len(rows["gt"]),
        "skipped": skipped, "dim_sid_cluster_frames": n_cluster_frames,
        "sid_k": metrics.SID_K, "table_scale": metrics.TABLE_SCALE,
        "methods": {k: {"label": LABELS.get(k, k), **_mean_rows(rows[k])} for k in methods},
        "gt": {"label": "GT", **_mean_rows(rows["gt"])}, **_behaviour(alive, heard, seed),
        "per_clip": per_clip,
    }


def _behaviour(alive: dict[str, aliveness.AlivenessStats], heard: Heard, seed: int
               ) -> dict[str, Any]:
    """The figures beyond the paper's table: aliveness and listening."""
    return {"aliveness": _aliveness(alive), "voice_alone": listening.summarize(heard.effects),
            "listener_events": heard.responses.summary(seed)}
