"""Procedural stylised head: one deformation target per ARKit channel, head rotation.

The mesh comes from `avatar_mesh` (no ARKit face mesh can be downloaded). Each ARKit channel is
written as displacement "effects" on the rest mesh: weighted translations, rotations about a
pivot (jaw, eyeballs) or parts rebuilt with moved parameters (lids, brows). Effects are baked at
weight 1 into (52, V, 3) deltas; channels whose half pose is off the straight line (rotations,
lids) also get a quadratic corrective, so half-way poses follow the arc instead of its chord:
    p(w) = rest + sum_c w_c D_c + sum_k (w_k - w_k^2) C_k          # (52,) -> (V, 3)
Frame: x to the viewer's right (the face's left), y up, z out of the face.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from scipy import sparse
from scipy.spatial.transform import Rotation

from dualtalk_core.render import avatar_mesh as mesh
from dualtalk_core.render.avatar_mesh import (BODY, BROW, EYE, EYE_LON, LID, LID_LOW, LID_UP,
                                              MOUTH, MOUTH_LAT, MOUTH_W, REGIONS, SKIN, TEETH,
                                              TONGUE,
                                              brow_points, dirs, eye_center, gauss, lid_points,
                                              mouth_fields, mouth_line, skin_point, smooth)
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE, get_rig

LOG = logging.getLogger(__name__)
__all__ = ["Avatar", "build_avatar", "head_rotation", "REGIONS", "SKIN", "BROW", "EYE", "LID",
           "TEETH", "TONGUE", "BODY", "MOUTH"]

JAW_PIVOT = np.array([0.0, -0.10, -0.05])  # near the ear: the jaw hinge
HEAD_PIVOT = np.array([0.0, -0.55, -0.10])  # top of the neck
JAW_OPEN_RAD = 0.30
_CLOSE, _JAW_OPEN = ARKIT_BLENDSHAPES.index("mouthClose"), ARKIT_BLENDSHAPES.index("jawOpen")
Effect = Callable[[float], np.ndarray]  # amount in [0, 1] -> (V, 3) displacement


def _linear(weight: np.ndarray, vec: np.ndarray | tuple[float, ...]) -> Effect:
    delta = weight[:, None] * np.asarray(vec, float)
    return lambda a: a * delta


def _rotation(p: np.ndarray, weight: np.ndarray, pivot: np.ndarray, rotvec: np.ndarray
              ) -> Effect:
    """Rotate by weight * amount * rotvec about pivot (angles scale, so blends stay on arcs)."""
    def effect(a: float) -> np.ndarray:
        rot = Rotation.from_rotvec((a * weight)[:, None] * rotvec[None])
        return rot.apply(p - pivot) + pivot - p
    return effect


def _rebuild(n: int, sl: slice, build: Callable[[float], np.ndarray]) -> Effect:
    """A part rebuilt with moved parameters (lids, brows): displacement from its rest build."""
    rest = build(0.0)

    def effect(a: float) -> np.ndarray:
        out = np.zeros((n, 3))
        out[sl] = build(a) - rest
        return out
    return effect


class _Fields:
    """Rest positions and named weight fields (V,) that the targets are written in."""

    def __init__(self, parts: mesh.Parts) -> None:
        self.p, self.ranges, self.n = np.vstack(parts.verts), parts.ranges, parts.n
        lon, lat = parts.cat("lon"), parts.cat("lat")
        skin = (~np.isnan(lon)).astype(float)
        self.lon, self.lat = np.nan_to_num(lon, nan=np.pi), np.nan_to_num(lat)
        self.w = {k: v * skin for k, v in mouth_fields(self.lon, self.lat).items()}
        self.w["jaw"] = parts.cat("jaw")
        self.skin = skin

    def bump(self, side: float, lon: float, lat: float, s_lon: float, s_lat: float
             ) -> np.ndarray:
        return self.skin * gauss(self.lon, self.lat, (side * lon, lat, s_lon, s_lat))

    def corner(self, side: float) -> np.ndarray:
        return self.bump(side, MOUTH_W, float(mouth_line(MOUTH_W)), 0.11, 0.08)

    def half(self, side: float) -> np.ndarray:
        return smooth(-0.25, 0.25, side * self.lon / MOUTH_W)

    def mask(self, *names: str) -> np.ndarray:
        out = np.zeros(self.n)
        for name in names:
            out[self.ranges[name]] = 1.0
        return out


def _v(side: float, x: float, y: float, z: float) -> np.ndarray:
    return np.array([side * x, y, z])


def _eye_effects(f: _Fields, side: float, tag: str) -> dict[str, list[Effect]]:
    """Gaze turns the eyeball; lids are rebuilt with moved edges; squints lift the cheek."""
    eye, c = f.mask("eye" + tag), eye_center(side)

    def lids(d_up: float, d_low: float) -> list[Effect]:
        return [_rebuild(f.n, f.ranges["lid_up" + tag], lambda a: lid_points(
                    side, LID_UP[0], LID_UP[1] + a * d_up, LID_UP[2])),
                _rebuild(f.n, f.ranges["lid_low" + tag], lambda a: lid_points(
                    side, LID_LOW[0], LID_LOW[1] + a * d_low, LID_LOW[2]))]

    def gaze(rotvec: np.ndarray) -> Effect:
        return _rotation(f.p, eye, c, rotvec)
    under = f.bump(side, EYE_LON, -0.17, 0.13, 0.07)
    inward = np.array([0.0, -side * 0.45, 0.0])  # about +y, + turns the gaze to +x
    return {
        "eyeBlink": lids(-1.15, 0.18),
        "eyeLookDown": [gaze(np.array([0.38, 0.0, 0.0]))] + lids(-0.25, -0.08),
        "eyeLookUp": [gaze(np.array([-0.38, 0.0, 0.0]))] + lids(0.15, 0.06),
        "eyeLookIn": [gaze(inward)],
        "eyeLookOut": [gaze(-inward)],
        "eyeSquint": lids(-0.12, 0.30) + [_linear(under, (0.0, 0.03, 0.01))],
        "eyeWide": lids(0.40, -0.12),
        "cheekSquint": lids(0.0, 0.16) + [
            _linear(f.bump(side, 0.40, -0.20, 0.14, 0.10), _v(side, 0.01, 0.05, 0.03))],
    }


def _brow_effects(f: _Fields, side: float, tag: str) -> dict[str, list[Effect]]:
    u = np.linspace(0.0, 1.0, 22)
    sl = f.ranges["brow" + tag]

    def brow(dlat: np.ndarray, dlon: np.ndarray | float = 0.0) -> Effect:
        return _rebuild(f.n, sl, lambda a: brow_points(side, a * dlat, a * dlon))
    return {
        "browInnerUp": [brow(0.085 * (1.0 - u) ** 1.5),
                        _linear(f.bump(side, 0.16, 0.32, 0.12, 0.12), (0.0, 0.02, 0.0))],
        "browOuterUp": [brow(0.075 * u ** 1.5)],
        "browDown": [brow(-0.045 - 0.03 * (1.0 - u), -0.025 * (1.0 - u)),
                     _linear(f.bump(side, 0.12, 0.15, 0.07, 0.08), _v(side, -0.01, -0.02, 0))],
    }


def _mouth_effects(f: _Fields, side: float) -> dict[str, list[Effect]]:
    """Sided mouth channels: corners, cheeks, lips and nose wings of one side."""
    w, corner, half = f.w, f.corner(side), f.half(side)
    return {
        "mouthSmile": [_linear(corner, _v(side, 0.05, 0.065, -0.03)),
                       _linear(f.bump(side, 0.42, -0.3, 0.14, 0.12), _v(side, 0.01, 0.03, 0.015))],
        "mouthFrown": [_linear(corner, _v(side, 0.005, -0.06, -0.01))],
        "mouthDimple": [_linear(corner, _v(side, 0.045, 0.01, -0.05))],
        "mouthStretch": [_linear(corner, _v(side, 0.06, -0.025, -0.02))],
        "mouthPress": [_linear(half * w["upper_lip"], (0.0, -0.012, -0.025)),
                       _linear(half * w["lower_lip"], (0.0, 0.02, -0.025))],
        "mouthLowerDown": [_linear(half * w["lower_lip"], (0.0, -0.07, 0.01))],
        "mouthUpperUp": [_linear(half * w["upper_lip"], (0.0, 0.055, 0.01))],
        "noseSneer": [_linear(f.bump(side, 0.085, -0.24, 0.05, 0.06), _v(side, 0.01, 0.045, 0)),
                      _linear(f.bump(side, 0.13, -0.13, 0.06, 0.08), (0.0, 0.025, 0.015)),
                      _linear(half * w["upper_lip"], (0.0, 0.015, 0.0))],
    }


def _centre_effects(f: _Fields) -> dict[str, list[Effect]]:
    """Unsided channels: jaw, lips as a whole, cheeks, tongue."""
    w = f.w
    jaw = _rotation(f.p, w["jaw"], JAW_PIVOT, np.array([JAW_OPEN_RAD, 0.0, 0.0]))
    close = (w["lower_lip"] * f.skin)[:, None] * (-0.85 * jaw(1.0))
    corners = f.corner(1.0)[:, None] * [-1.0, 0, 0] + f.corner(-1.0)[:, None] * [1.0, 0, 0]
    cheeks = f.bump(1.0, 0.43, -0.38, 0.16, 0.13) + f.bump(-1.0, 0.43, -0.38, 0.16, 0.13)
    puff = cheeks[:, None] * (dirs(f.lon, f.lat) + [[0.0, -0.2, 0.0]]) * 0.08
    tongue = f.mask("tongue")
    tip = smooth(0.0, 1.0, (f.p[:, 2] - (skin_point(0.0, MOUTH_LAT)[2] - 0.45)) / 0.2) * tongue
    return {
        "jawOpen": [jaw],
        "jawForward": [_linear(w["jaw"], (0.0, 0.0, 0.06))],
        "jawLeft": [_linear(w["jaw"], (0.07, 0.0, 0.0))],
        "jawRight": [_linear(w["jaw"], (-0.07, 0.0, 0.0))],
        "mouthClose": [lambda a: a * close, _linear(w["upper_lip"], (0.0, -0.03, 0.0))],
        "mouthFunnel": [_linear(w["area"], (0.0, 0.0, 0.07)), lambda a: a * 0.06 * corners,
                        _linear(w["upper_lip"], (0.0, 0.03, 0.01)),
                        _linear(w["lower_lip"], (0.0, -0.045, 0.01))],
        "mouthPucker": [_linear(w["area"], (0.0, 0.0, 0.09)), lambda a: a * 0.09 * corners,
                        _linear(w["lower_lip"], (0.0, 0.01, 0.0))],
        "mouthLeft": [_linear(w["area"], (0.07, 0.0, -0.01))],
        "mouthRight": [_linear(w["area"], (-0.07, 0.0, -0.01))],
        "mouthRollLower": [_linear(w["lower_lip"], (0.0, 0.025, -0.045))],
        "mouthRollUpper": [_linear(w["upper_lip"], (0.0, -0.02, -0.04))],
        "mouthShrugLower": [_linear(w["lower_lip"] + f.bump(1.0, 0.0, -0.8, 0.2, 0.12),
                                    (0.0, 0.035, 0.02))],
        "mouthShrugUpper": [_linear(w["upper_lip"], (0.0, 0.025, 0.01))],
        "cheekPuff": [lambda a: a * puff, _linear(w["area"], (0.0, 0.0, 0.015))],
        "tongueOut": [_linear(tongue, (0.0, 0.05, 0.12)), _linear(tip, (0.0, 0.025, 0.16))],
    }


def _all_effects(f: _Fields) -> dict[str, list[Effect]]:
    effects = _centre_effects(f)
    for side, tag, name in ((1.0, "L", "Left"), (-1.0, "R", "Right")):
        sided = {**_eye_effects(f, side, tag), **_brow_effects(f, side, tag),
                 **_mouth_effects(f, side)}
        for key, value in sided.items():
            target = key if key == "browInnerUp" else key + name
            effects.setdefault(target, []).extend(value)
    missing = set(ARKIT_BLENDSHAPES) - set(effects)
    assert not missing, f"no target for {sorted(missing)}"
    return effects


def _bake(f: _Fields) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(52, V, 3) deltas at weight 1, plus correctives for channels whose half pose is off the
    straight line (rotations, rebuilt lids): C = 4 * half - 2 * full."""
    effects = _all_effects(f)
    deltas = np.zeros((len(ARKIT_BLENDSHAPES), f.n, 3))
    corr, idx = [], []
    for c, name in enumerate(ARKIT_BLENDSHAPES):
        deltas[c] = sum(e(1.0) for e in effects[name])
        c_k = 4.0 * sum(e(0.5) for e in effects[name]) - 2.0 * deltas[c]
        if np.abs(c_k).max() > 1e-4:
            corr.append(c_k)
            idx.append(c)
    return deltas, np.array(corr).reshape(-1, f.n, 3), np.array(idx, np.int64)


# REP-103 head frame (x forward, y left, z up) -> this module's frame (x left, y up, z forward).
_REP_TO_MESH = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True, eq=False)
class Avatar:
    """The head mesh with its targets; arrays are float32 in the mesh frame (see module doc)."""

    rest: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    region: np.ndarray  # (V,) int8 index into REGIONS
    # Colour outlines as signed distances (+ inside), drawn per pixel so edges stay crisp:
    lip: np.ndarray  # (V,) to the lip outline (rad)
    hair: np.ndarray  # (V,) to the hairline (rad)
    shirt: np.ndarray  # (V,) to the collar (units)
    ao: np.ndarray  # (V,) baked occlusion (nostrils, mouth corners, inside the mouth)
    lash: np.ndarray  # (V,) 0 at the back of a lid, 1 at its rim
    local: np.ndarray  # (V, 3) eyeball directions at rest (the shader draws iris and pupil)
    n_head: int  # vertices [0, n_head) turn with the head; the rest (neck, shoulders) stay
    deltas: np.ndarray  # (52, V, 3)
    correctives: np.ndarray  # (K, V, 3)
    corrective_channels: np.ndarray  # (K,) channel index of each corrective
    ranges: dict[str, slice]

    # What the renderer asks of a mesh source (the FLAME model answers the same):
    n_coeffs: ClassVar[int] = len(ARKIT_BLENDSHAPES) + len(HEAD_POSE)
    # Camera position, target and vertical field of view (deg): head and shoulders.
    view: ClassVar[tuple[np.ndarray, np.ndarray, float]] = (
        np.array([0.0, -0.2, 9.0]), np.array([0.0, -0.33, 0.0]), 20.5)

    @property
    def n_vertices(self) -> int:
        return len(self.rest)

    @property
    def eye_faces(self) -> np.ndarray:
        """(F,) bool: the eyeball triangles (the renderer draws iris and pupil on them)."""
        return self.region[self.faces[:, 0]] == EYE

    def attributes(self, palette: Any) -> tuple[np.ndarray, np.ndarray]:
        """Static per-vertex (V, 4) sRGB colour + specular, and (V, 4) shader data: occlusion
        and the lip, hair, collar distances (on the eyeballs: occlusion, rest direction).

        `palette` is a render.Palette (colours by region; lips, hair, shirt and lashes)."""
        p = palette
        colours = {SKIN: p.skin, BROW: p.brow, EYE: p.sclera, LID: p.skin, TEETH: p.teeth,
                   TONGUE: p.tongue, BODY: p.neck, MOUTH: p.mouth}
        specular = {SKIN: p.skin_spec, BROW: 0.03, EYE: 1.2, LID: p.skin_spec, TEETH: 0.4,
                    TONGUE: 0.3, BODY: 0.08, MOUTH: 0.0}
        rgb = np.array([colours[r] for r in range(len(REGIONS))])[self.region]
        spec = np.array([specular[r] for r in range(len(REGIONS))])[self.region]
        lash = smooth(0.9, 1.0, self.lash)[:, None]  # the lid rim rows are the lash line
        rgb = (1 - lash) * rgb + lash * np.array(p.lash)
        aux = np.column_stack([self.ao, self.lip, self.hair, self.shirt])
        eye = self.region == EYE
        aux[eye, 1:] = self.local[eye]
        return np.column_stack([rgb, spec]).astype("f4"), aux.astype("f4")

    def deform(self, weights: np.ndarray) -> np.ndarray:
        """(52,) ARKit weights (clipped to [0, 1]) -> (V, 3) vertices, head not turned."""
        w = np.clip(np.asarray(weights, np.float32), 0.0, 1.0)
        if w.shape != (len(ARKIT_BLENDSHAPES),):
            raise ValueError(f"expected {len(ARKIT_BLENDSHAPES)} ARKit weights, got {w.shape}")
        wk = w[self.corrective_channels]
        # = rest + tensordot(w, deltas) + tensordot(wk - wk^2, correctives), as one sparse product
        return self.rest + (self._basis @ np.concatenate([w, wk - wk * wk])).reshape(-1, 3)

    @functools.cached_property
    def _basis(self) -> sparse.csr_matrix:
        """(V*3, 52 + K) deltas and correctives; sparse because most channels move few vertices
        (and a dense product on a CPU shared with llvmpipe's threads is slow)."""
        dense = np.concatenate([self.deltas, self.correctives]).reshape(
            len(self.deltas) + len(self.correctives), -1).T.copy()
        dense[np.abs(dense) < 1e-6] = 0.0
        return sparse.csr_matrix(dense)

    def pose(self, coeffs: np.ndarray) -> np.ndarray:
        """(55,) arkit52 coefficients (52 weights, head pitch/yaw/roll in rad) -> (V, 3)."""
        coeffs = np.asarray(coeffs, np.float64)
        if coeffs.shape != (len(ARKIT_BLENDSHAPES) + len(HEAD_POSE),):
            raise ValueError(f"expected arkit52 coefficients of shape (55,), got {coeffs.shape}")
        weights = coeffs[: len(ARKIT_BLENDSHAPES)].copy()
        # ARKit's mouthClose closes the lips *against* jawOpen; alone it would push the lower
        # lip through the upper one, so it is capped at jawOpen.
        weights[_CLOSE] = min(weights[_CLOSE], max(weights[_JAW_OPEN], 0.0))
        verts = self.deform(weights)
        rot = head_rotation(coeffs)
        if not np.allclose(rot, np.eye(3)):
            h = slice(0, self.n_head)
            verts[h] = (verts[h] - HEAD_PIVOT) @ rot.T.astype(np.float32) + HEAD_PIVOT
        return verts


def head_rotation(coeffs: np.ndarray) -> np.ndarray:
    """(55,) arkit52 coefficients -> (3, 3) head rotation in the mesh frame (rigs.py's REP-103
    convention: + pitch = chin down, + yaw = turn to its left, + roll = tilt to its right)."""
    quat = get_rig("arkit52").head_quaternion(np.asarray(coeffs, np.float64))
    rep = Rotation.from_quat(quat).as_matrix()
    return _REP_TO_MESH @ rep @ _REP_TO_MESH.T


@functools.lru_cache(maxsize=1)
def build_avatar() -> Avatar:
    """Build (once per process, ~0.3 s) the head with all 52 targets."""
    parts, n_head = mesh.build_parts()
    fields = _Fields(parts)
    deltas, corr, idx = _bake(fields)
    f32 = np.float32
    avatar = Avatar(
        rest=fields.p.astype(f32), faces=np.vstack(parts.faces).astype(np.int32),
        region=parts.cat("region").astype(np.int8), lip=parts.cat("lip").astype(f32),
        hair=parts.cat("hair").astype(f32), shirt=parts.cat("shirt").astype(f32),
        ao=parts.cat("ao").astype(f32),
        lash=parts.cat("lash").astype(f32), local=parts.cat("local").astype(f32),
        n_head=n_head, deltas=deltas.astype(f32), correctives=corr.astype(f32),
        corrective_channels=idx, ranges=dict(parts.ranges))
    LOG.debug("avatar: %d vertices, %d triangles, %d correctives", parts.n,
              len(avatar.faces), len(idx))
    return avatar
