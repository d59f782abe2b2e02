"""DualTalk evaluation metrics on (T, D) motion arrays, as the published release computes them.

Every metric is per clip and per channel group (EXP/JAW/POSE); a table reports the mean over clips.
`pred`/`gt` are the target person's predicted and ground-truth motion, `partner` the other person's
ground-truth motion. All arrays are truncated to the shortest length first (the release does so:
model output and tracker output can differ by a frame).

Definitions (the release's; docs/DESIGN.md, "The published recipe and metrics"):
- FD: Frechet distance between Gaussians fitted to the frames (mean, unbiased covariance).
- FD-offset (ours): the squared distance between the two means, FD's first term. FD minus it is
  the spread (covariance) term. On data where people rest at different neutral faces, the
  offset is mostly the person's resting face, which no method can know for a new person.
- P-FD: FD between [partner, gt] and [partner, pred] concatenated along features.
- MSE: mean over frames and dims of the squared error.
- SID: entropy (bits) of the histogram of gt frames over k-means clusters fitted on pred frames.
  `sid_dim` is DIM's variant: clusters fitted on ground truth, predictions assigned.
- rPCC: |pearson(gt, partner) - pearson(pred, partner)| over the flattened T x D blocks.
- Var: mean over dims of the per-dim variance over time.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.linalg
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from dualtalk_core.rigs import GROUPS, Rig, get_rig

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("FD", "FD-offset", "P-FD", "MSE", "SID", "SID-DIM", "rPCC", "Var")
SID_K: dict[str, int] = {"EXP": 40, "JAW": 10, "POSE": 10}
# Multipliers applied only when printing a table (the paper's Table 2 convention);
# metrics.json holds raw values.
TABLE_SCALE: dict[str, dict[str, float]] = {
    "FD": {"EXP": 1.0, "JAW": 1e3, "POSE": 1e2},
    "FD-offset": {"EXP": 1.0, "JAW": 1e3, "POSE": 1e2},
    "P-FD": {"EXP": 1.0, "JAW": 1e3, "POSE": 1e2},
    "MSE": {"EXP": 10.0, "JAW": 1e3, "POSE": 1e2},
    "rPCC": {"EXP": 1e2, "JAW": 10.0, "POSE": 10.0},
}
FD_EPS = 1e-6
ENTROPY_EPS = 1e-6
MIN_FRAMES = 2
# The release names only k and random_state; sklearn's default n_init ("auto" = one k-means++ run
# since sklearn 1.4) is pinned here so a library upgrade cannot move the numbers.
KMEANS_N_INIT = 1
# Below this many frames k-means runs single-threaded: per-clip fits are so small that OpenMP
# start-up and synchronisation cost more than they save (4-6x slower on a shared 2-core box).
KMEANS_SINGLE_THREAD_FRAMES = 20_000
# Relative size of an imaginary part of sqrtm that still counts as rounding noise.
IMAG_TOL = 1e-3


def _as_motion(name: str, x: np.ndarray) -> np.ndarray:
    """Validate one (T, D) motion array and return it as float64."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a (T, D) motion array with D >= 1, "
                         f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf; clean the motion before scoring it")
    return arr


def _prepare(min_frames: int = MIN_FRAMES, same_dim: bool = True,
             **arrays: np.ndarray) -> list[np.ndarray]:
    """Validate, check matching D, truncate to the shortest T and check it is long enough."""
    checked = [_as_motion(name, x) for name, x in arrays.items()]
    if same_dim and len({a.shape[1] for a in checked}) > 1:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(arrays, checked))
        raise ValueError(f"expected the same number of dims D in every array, got {shapes}")
    t = min(a.shape[0] for a in checked)
    if t < min_frames:
        raise ValueError(f"too few frames: {t} after truncating to the shortest array; "
                         f"this metric needs at least {min_frames}")
    return [a[:t] for a in checked]


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of the frames of x (T, D)."""
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False, ddof=1))


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float | None:
    """Tr(sqrtm(s1 @ s2)), or None when sqrtm is not finite (the caller regularises)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        root = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(root).all():
        return None
    if np.iscomplexobj(root):
        imag = np.abs(root.imag).max()
        if imag > IMAG_TOL * max(1.0, np.abs(root.real).max()):
            log.warning("FD: dropping a non-negligible imaginary part %.3g of sqrtm", imag)
        root = root.real
    return float(np.trace(root))


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, s_a = _gaussian(a)
    mu_b, s_b = _gaussian(b)
    tr = _trace_sqrt_product(s_a, s_b)
    if tr is None:
        # Singular covariances can make sqrtm blow up: the release adds eps * I to both.
        eye = FD_EPS * np.eye(s_a.shape[0])
        s_a, s_b = s_a + eye, s_b + eye
        tr = _trace_sqrt_product(s_a, s_b)
        if tr is None:
            raise ValueError("FD: sqrtm of the covariance product is not finite "
                             "even with eps * I added")
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * tr)


def fd(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the frames of a and b, both (T, D)."""
    a, b = _prepare(a=a, b=b)
    return _frechet(a, b)


def fd_offset(a: np.ndarray, b: np.ndarray) -> float:
    """FD's mean term |mean(a) - mean(b)|^2 (frames of a and b, both (T, D)): how much of FD a
    constant shift of every frame accounts for."""
    a, b = _prepare(a=a, b=b)
    diff = a.mean(axis=0) - b.mean(axis=0)
    return float(diff @ diff)


def pfd(pred: np.ndarray, gt: np.ndarray, partner: np.ndarray) -> float:
    """Paired FD on the joint (partner, self) frames: timing relative to the partner counts."""
    pred, gt, partner = _prepare(same_dim=False, pred=pred, gt=gt, partner=partner)
    if pred.shape[1] != gt.shape[1]:
        raise ValueError(f"pred and gt need the same D, got {pred.shape} and {gt.shape}")
    return _frechet(np.concatenate([partner, gt], axis=1), np.concatenate([partner, pred], axis=1))


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames and dims of (pred - gt)^2."""
    pred, gt = _prepare(min_frames=1, pred=pred, gt=gt)
    return float(np.mean((pred - gt) ** 2))


def _entropy_bits(labels: np.ndarray, k: int) -> float:
    """-sum p log2(p + 1e-6) of the normalised k-bin histogram (the release's formula)."""
    p = np.bincount(labels, minlength=k) / labels.size
    return float(-np.sum(p * np.log2(p + ENTROPY_EPS)))


def fit_clusters(frames: np.ndarray, k: int) -> KMeans:
    """k-means (random_state 0) on (M, D) frames; M must be >= k."""
    x = _prepare(min_frames=max(k, 1), frames=frames)[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    threads = 1 if len(x) < KMEANS_SINGLE_THREAD_FRAMES else None
    with warnings.catch_warnings(), threadpool_limits(limits=threads):
        # Collapsed output (e.g. a constant prediction) has fewer distinct points than k;
        # the score is then simply low, which is what SID is meant to show.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=k, random_state=0, n_init=KMEANS_N_INIT).fit(x)


def sid(pred: np.ndarray, gt: np.ndarray, k: int) -> float:
    """Release SID: clusters fitted on the clip's predicted frames, gt frames assigned (bits)."""
    pred, gt = _prepare(min_frames=max(k, MIN_FRAMES), pred=pred, gt=gt)
    labels = fit_clusters(pred, k).predict(gt)
    return _entropy_bits(labels, k)


def sid_dim(pred: np.ndarray, gt: np.ndarray, k: int, clusters: KMeans | None = None) -> float:
    """DIM's SID: clusters fitted on ground truth, predicted frames assigned (bits).

    DIM fits the clusters on the ground truth of the whole evaluation set; pass them as `clusters`
    (see `fit_clusters`). Without them the clip's own gt frames are used.
    """
    pred, gt = _prepare(min_frames=max(k, MIN_FRAMES), pred=pred, gt=gt)
    if clusters is None:
        clusters = fit_clusters(gt, k)
    elif clusters.n_clusters != k or clusters.cluster_centers_.shape[1] != pred.shape[1]:
        have = clusters.cluster_centers_.shape
        raise ValueError(f"clusters have k={have[0]}, D={have[1]}; "
                         f"expected k={k}, D={pred.shape[1]}")
    return _entropy_bits(clusters.predict(pred), k)


def _pearson_flat(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the row-major flattened blocks; NaN if either is constant."""
    xc = x.ravel() - x.mean()
    yc = y.ravel() - y.mean()
    denom = np.sqrt((xc @ xc) * (yc @ yc))
    return float(xc @ yc / denom) if denom > 0 else float("nan")


def rpcc(pred: np.ndarray, gt: np.ndarray, partner: np.ndarray) -> float:
    """|corr(gt, partner) - corr(pred, partner)|; NaN when a block is constant (undefined corr)."""
    pred, gt, partner = _prepare(pred=pred, gt=gt, partner=partner)
    return abs(_pearson_flat(gt, partner) - _pearson_flat(pred, partner))


def var(x: np.ndarray) -> float:
    """Mean over dims of the per-dim variance over time (ddof 0)."""
    (x,) = _prepare(x=x)
    return float(np.mean(np.var(x, axis=0)))


def evaluate_clip(pred: np.ndarray, gt: np.ndarray, partner: np.ndarray, rig: Rig | str,
                  dim_clusters: dict[str, KMeans] | None = None) -> dict[str, dict[str, float]]:
    """All metrics of one clip: {group: {metric: value}} for EXP, JAW and POSE.

    `dim_clusters` (per group) are DIM-SID clusters fitted on the evaluation set's ground truth;
    without them DIM-SID uses the clip's own ground truth.
    """
    rig = get_rig(rig) if isinstance(rig, str) else rig
    pred, gt, partner = _prepare(min_frames=max(SID_K.values()), pred=pred, gt=gt, partner=partner)
    if pred.shape[1] != rig.dim:
        raise ValueError(f"expected {rig.dim} channels of rig {rig.name!r}, got {pred.shape[1]}")
    out: dict[str, dict[str, float]] = {}
    for group in GROUPS:
        idx = rig.group_index(group)
        p, g, q = pred[:, idx], gt[:, idx], partner[:, idx]
        k = SID_K[group]
        out[group] = {
            "FD": _frechet(p, g), "FD-offset": fd_offset(p, g), "P-FD": pfd(p, g, q),
            "MSE": mse(p, g), "SID": sid(p, g, k),
            "SID-DIM": sid_dim(p, g, k, (dim_clusters or {}).get(group)),
            "rPCC": rpcc(p, g, q), "Var": var(p),
        }
    return out


def scale_for(metric: str, group: str) -> float:
    """The table multiplier of a metric/group (1 where the protocol names none)."""
    return TABLE_SCALE.get(metric, {}).get(group, 1.0)
