"""Metrics: hand-checked cases, agreement with independent implementations, input checks.

The reference implementations below are written from the facts file's definitions with
different numerics (eigendecompositions instead of sqrtm, np.corrcoef, label counting), so a
shared bug in one formula is unlikely to hide.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from dualtalk_core.evaluation import metrics
from dualtalk_core.rigs import get_rig

REL = 1e-4


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _correlated(rng: np.random.Generator, t: int, d: int) -> np.ndarray:
    """Random motion with a non-diagonal covariance and a non-zero mean."""
    mix = rng.normal(size=(d, d))
    return rng.normal(size=(t, d)) @ mix + rng.normal(size=d)


# ---- independent references ------------------------------------------------------------------

def _ref_cov(x: np.ndarray) -> np.ndarray:
    xc = x - x.sum(axis=0) / len(x)
    return xc.T @ xc / (len(x) - 1)


def _ref_psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _ref_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Tr(sqrtm(Sa Sb)) = sum sqrt(eig(Sa^1/2 Sb Sa^1/2)), a symmetric PSD matrix."""
    t = min(len(a), len(b))
    a, b = a[:t], b[:t]
    sa, sb = _ref_cov(a), _ref_cov(b)
    ra = _ref_psd_sqrt(sa)
    eig = np.linalg.eigvalsh(ra @ sb @ ra)
    dm = a.mean(axis=0) - b.mean(axis=0)
    tr_root = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(np.sum(dm ** 2) + np.trace(sa) + np.trace(sb) - 2 * tr_root)


def _ref_entropy(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(sum(-q * np.log2(q + 1e-6) for q in p))


def _ref_assign(centers: np.ndarray, x: np.ndarray) -> np.ndarray:
    d2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


def _ref_sid(pred: np.ndarray, gt: np.ndarray, k: int) -> float:
    km = KMeans(n_clusters=k, random_state=0, n_init=1).fit(pred)
    return _ref_entropy(_ref_assign(km.cluster_centers_, gt))


def _ref_rpcc(pred: np.ndarray, gt: np.ndarray, partner: np.ndarray) -> float:
    c_gt = np.corrcoef(gt.reshape(-1), partner.reshape(-1))[0, 1]
    c_pred = np.corrcoef(pred.reshape(-1), partner.reshape(-1))[0, 1]
    return float(abs(c_gt - c_pred))


def _ref_var(x: np.ndarray) -> float:
    return float(np.mean([np.mean((col - col.mean()) ** 2) for col in x.T]))


# ---- hand-checked cases ----------------------------------------------------------------------

def test_fd_of_identical_arrays_is_zero() -> None:
    x = _correlated(_rng(), 200, 6)
    assert metrics.fd(x, x) == pytest.approx(0.0, abs=1e-9)


def test_fd_of_a_mean_shift_is_d_c_squared() -> None:
    x = _correlated(_rng(1), 300, 5)
    assert metrics.fd(x, x + 0.7) == pytest.approx(5 * 0.7 ** 2, rel=1e-6)


def test_fd_offset_is_the_mean_term_of_fd() -> None:
    x = _correlated(_rng(3), 300, 5)
    assert metrics.fd_offset(x, x + 0.7) == pytest.approx(5 * 0.7 ** 2, rel=1e-9)
    y = 2.0 * (x - x.mean(axis=0)) + x.mean(axis=0)  # same mean, twice the spread
    assert metrics.fd_offset(x, y) == pytest.approx(0.0, abs=1e-12)
    assert metrics.fd(x, y) > 0.1
    a, b = _correlated(_rng(4), 200, 4), 0.5 + _correlated(_rng(5), 200, 4)
    spread = _ref_fd(a - a.mean(axis=0), b - b.mean(axis=0))
    assert metrics.fd(a, b) == pytest.approx(metrics.fd_offset(a, b) + spread, rel=REL)


def test_fd_of_constant_arrays_uses_the_mean_only() -> None:
    # Zero covariance: sqrtm of the zero matrix is fine and FD is the squared mean distance.
    assert metrics.fd(np.zeros((10, 3)), np.ones((10, 3)) * 2) == pytest.approx(12.0)


def test_mirrored_motion_has_zero_rpcc() -> None:
    partner = _correlated(_rng(2), 100, 4)
    assert metrics.rpcc(partner, partner, partner) == pytest.approx(0.0, abs=1e-12)


def test_mse_of_known_arrays() -> None:
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert metrics.mse(pred, np.zeros((2, 2))) == pytest.approx(7.5)
    assert metrics.mse(pred, pred + 0.5) == pytest.approx(0.25)


def test_var_of_known_signals() -> None:
    square = np.tile([[0.0, 0.0], [2.0, 4.0]], (50, 1))  # per-dim variances 1 and 4
    assert metrics.var(square) == pytest.approx(2.5)
    t = np.arange(100)
    sine = 3.0 * np.sin(2 * np.pi * t / 25)[:, None]  # whole periods: variance A^2 / 2
    assert metrics.var(sine) == pytest.approx(4.5)


def test_pfd_of_a_perfect_prediction_is_zero() -> None:
    gt, partner = _correlated(_rng(3), 150, 3), _correlated(_rng(4), 150, 3)
    assert metrics.pfd(gt, gt, partner) == pytest.approx(0.0, abs=1e-9)


# ---- agreement with independent implementations on random data ------------------------------

@pytest.mark.parametrize("d", [1, 3, 20])
def test_fd_matches_eigen_reference(d: int) -> None:
    rng = _rng(d)
    a, b = _correlated(rng, 240, d), 0.5 * _correlated(rng, 260, d)
    assert metrics.fd(a, b) == pytest.approx(_ref_fd(a, b), rel=REL)


def test_fd_regularises_a_non_finite_sqrtm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-finite sqrtm is retried with 1e-6 * I on both covariances; a tiny imaginary part
    of the root is dropped."""
    real_sqrtm = metrics.scipy.linalg.sqrtm
    calls: list[np.ndarray] = []

    def flaky_sqrtm(m: np.ndarray) -> np.ndarray:
        calls.append(m)
        if len(calls) == 1:
            return np.full_like(m, np.nan)
        return real_sqrtm(m) + 1e-12j

    monkeypatch.setattr(metrics.scipy.linalg, "sqrtm", flaky_sqrtm)
    rng = _rng(12)
    a, b = _correlated(rng, 100, 3), _correlated(rng, 100, 3)
    eye = 1e-6 * np.eye(3)
    got = metrics.fd(a, b)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (_ref_cov(a) + eye) @ (_ref_cov(b) + eye), rtol=1e-9)
    assert isinstance(got, float) and got == pytest.approx(_ref_fd(a, b), rel=REL)


def test_pfd_matches_reference() -> None:
    rng = _rng(5)
    pred, gt, partner = (_correlated(rng, 200, 4) for _ in range(3))
    want = _ref_fd(np.hstack([partner, gt]), np.hstack([partner, pred]))
    assert metrics.pfd(pred, gt, partner) == pytest.approx(want, rel=REL)


def test_mse_rpcc_var_match_references() -> None:
    rng = _rng(6)
    partner = _correlated(rng, 180, 5)
    gt = 0.6 * partner + _correlated(rng, 180, 5)
    pred = 0.2 * partner + _correlated(rng, 180, 5)
    assert metrics.mse(pred, gt) == pytest.approx(np.square(pred - gt).sum() / pred.size, rel=REL)
    assert metrics.rpcc(pred, gt, partner) == pytest.approx(_ref_rpcc(pred, gt, partner), rel=REL)
    assert metrics.var(pred) == pytest.approx(_ref_var(pred), rel=REL)


@pytest.mark.parametrize("k", [10, 40])
def test_sid_matches_reference(k: int) -> None:
    rng = _rng(k)
    pred, gt = _correlated(rng, 300, 6), _correlated(rng, 300, 6)
    assert metrics.sid(pred, gt, k) == pytest.approx(_ref_sid(pred, gt, k), rel=REL)
    assert metrics.sid_dim(pred, gt, k) == pytest.approx(_ref_sid(gt, pred, k), rel=REL)


def test_sid_dim_uses_given_clusters() -> None:
    rng = _rng(7)
    pool, pred = _correlated(rng, 500, 3), _correlated(rng, 120, 3)
    clusters = metrics.fit_clusters(pool, 10)
    want = _ref_entropy(_ref_assign(clusters.cluster_centers_, pred))
    assert metrics.sid_dim(pred, pred, 10, clusters) == pytest.approx(want, rel=REL)
    with pytest.raises(ValueError, match="k=10"):
        metrics.sid_dim(pred, pred, 40, clusters)


# ---- bounds, truncation, input checks ----------------------------------------------------------

@pytest.mark.parametrize("k", [10, 40])
def test_sid_bounds(k: int) -> None:
    rng = _rng(8)
    pred, gt = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    for value in (metrics.sid(pred, gt, k), metrics.sid_dim(pred, gt, k)):
        assert 0.0 <= value <= np.log2(k)
    # A collapsed (constant) prediction: one cluster gets everything. The +1e-6 inside the log
    # makes the release's entropy -log2(1 + 1e-6) ~ -1.4e-6 there, not exactly 0.
    collapsed = metrics.sid(np.zeros((400, 4)), gt, k)
    assert -2e-6 <= collapsed <= 0.0


def test_arrays_are_truncated_to_the_shortest() -> None:
    rng = _rng(9)
    a, b, c = _correlated(rng, 120, 3), _correlated(rng, 100, 3), _correlated(rng, 110, 3)
    assert metrics.fd(a, b) == pytest.approx(metrics.fd(a[:100], b))
    assert metrics.rpcc(a, b, c) == pytest.approx(metrics.rpcc(a[:100], b, c[:100]))
    assert metrics.mse(a, b) == pytest.approx(metrics.mse(a[:100], b))


def test_rpcc_of_a_constant_block_is_nan() -> None:
    x = _correlated(_rng(10), 50, 2)
    assert np.isnan(metrics.rpcc(np.zeros_like(x), x, x))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.fd(np.zeros(10), np.zeros(10)), "expected a \\(T, D\\)"),
        (lambda: metrics.fd(np.zeros((10, 3)), np.zeros((10, 4))), "same number of dims"),
        (lambda: metrics.mse(np.full((5, 2), np.nan), np.zeros((5, 2))), "NaN"),
        (lambda: metrics.fd(np.zeros((1, 3)), np.zeros((5, 3))), "too few frames"),
        (lambda: metrics.sid(np.zeros((30, 3)), np.zeros((30, 3)), 40), "too few frames"),
        (lambda: metrics.pfd(np.zeros((5, 2)), np.zeros((5, 3)), np.zeros((5, 2))), "same D"),
        (lambda: metrics.var(np.array([["a"], ["b"]])), "numeric"),
    ],
)
def test_bad_inputs_raise_value_error(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


def test_evaluate_clip_reports_every_group_and_metric() -> None:
    rig = get_rig("arkit52")
    rng = _rng(11)
    gt, partner = rng.random((120, rig.dim)), rng.random((120, rig.dim))
    pred = gt + 0.05 * rng.normal(size=gt.shape)
    out = metrics.evaluate_clip(pred, gt, partner, "arkit52")
    assert set(out) == {"EXP", "JAW", "POSE"}
    for group, values in out.items():
        assert set(values) == set(metrics.METRICS)
        idx = rig.group_index(group)
        assert values["FD"] == pytest.approx(_ref_fd(pred[:, idx], gt[:, idx]), rel=REL)
        assert values["Var"] == pytest.approx(_ref_var(pred[:, idx]), rel=REL)
    with pytest.raises(ValueError, match="55 channels"):
        metrics.evaluate_clip(pred[:, :50], gt[:, :50], partner[:, :50], rig)


def test_table_scale_factors_follow_the_protocol() -> None:
    assert metrics.scale_for("FD", "JAW") == 1e3
    assert metrics.scale_for("P-FD", "POSE") == 1e2
    assert metrics.scale_for("MSE", "EXP") == 10
    assert metrics.scale_for("rPCC", "EXP") == 1e2
    assert metrics.scale_for("SID", "EXP") == 1
