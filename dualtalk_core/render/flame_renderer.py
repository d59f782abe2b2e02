"""Optional FLAME mesh for the face renderer: the user's FLAME model, skinned in numpy.

FLAME (https://flame.is.tue.mpg.de) is a licensed download, so nothing here ships it. Pickles
are never loaded (unpickling can run code): convert the official `generic_model.pkl` once, in
your own environment, to an .npz holding plain arrays under FLAME_KEYS, e.g.
    np.savez("flame.npz", **{k: np.asarray(model[k]) for k in FLAME_KEYS})
The skinning below is FLAME's published linear blend skinning written in numpy, so `smplx`
and torch are not needed to draw a `flame56` frame (50 expressions, jaw and head rotation).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

LOG = logging.getLogger(__name__)
FLAME_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights",
              "kintree_table")
N_SHAPE, N_EXP = 300, 50  # FLAME 2020: shapedirs = 300 identity + 100 expression components
HEAD_JOINT, JAW_JOINT = 0, 2  # joints: global, neck, jaw, left eye, right eye


@dataclass(frozen=True, eq=False)
class FlameModel:
    """Neutral-identity FLAME: template, expression and pose correctives, skinning weights."""

    v_template: np.ndarray  # (V, 3) metres, x to the face's left, y up, z out of the face
    faces: np.ndarray  # (F, 3)
    expr_dirs: np.ndarray  # (V, 3, 50)
    posedirs: np.ndarray  # (V, 3, 9 * (J - 1))
    j_regressor: np.ndarray  # (J, V)
    weights: np.ndarray  # (V, J)
    parents: np.ndarray  # (J,), parents[0] unused
    n_coeffs: int = N_EXP + 6

    @classmethod
    def load(cls, path: str | Path) -> "FlameModel":
        """Read a FLAME .npz (arrays only, allow_pickle=False); errors say how to get one."""
        path = Path(path)
        if path.suffix.lower() == ".pkl":
            raise ValueError(f"{path}: pickles are not loaded (they can run code); convert it "
                             "to .npz as described in dualtalk_core/render_flame.py")
        if not path.is_file():
            raise FileNotFoundError(
                f"FLAME model not found: {path}. FLAME is a licensed download from "
                "https://flame.is.tue.mpg.de; convert generic_model.pkl to an .npz with keys "
                f"{list(FLAME_KEYS)}")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in FLAME_KEYS if k not in data.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}; expected {list(FLAME_KEYS)}")
            try:
                arrays = {k: np.asarray(data[k]) for k in FLAME_KEYS}
            except ValueError as exc:  # an object array would need unpickling
                raise ValueError(f"{path}: holds Python objects, not plain arrays "
                                 f"(allow_pickle=False): {exc}") from exc
        return cls.from_arrays(arrays)

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "FlameModel":
        v = np.asarray(a["v_template"], np.float64)
        n = len(v)
        shapedirs = np.asarray(a["shapedirs"], np.float64)
        if shapedirs.shape[:2] != (n, 3) or shapedirs.shape[2] < N_SHAPE + N_EXP:
            raise ValueError(f"shapedirs must be ({n}, 3, >= {N_SHAPE + N_EXP}), got "
                             f"{shapedirs.shape}")
        posedirs = np.asarray(a["posedirs"], np.float64)
        if posedirs.shape[0] != n:  # smplx layout (P, V * 3) -> (V, 3, P)
            posedirs = posedirs.reshape(len(posedirs), n, 3).transpose(1, 2, 0)
        parents = np.asarray(a["kintree_table"])[0].astype(np.int64)
        return cls(v, np.asarray(a["f"], np.int64), shapedirs[:, :, N_SHAPE:N_SHAPE + N_EXP],
                   posedirs, np.asarray(a["J_regressor"], np.float64),
                   np.asarray(a["weights"], np.float64), parents)

    @property
    def eye_faces(self) -> np.ndarray:
        return np.zeros(len(self.faces), bool)

    @property
    def view(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Camera in front of the face, framing the template's bounding box."""
        lo, hi = self.v_template.min(0), self.v_template.max(0)
        center = 0.5 * (lo + hi)
        return center + np.array([0.0, 0.0, 3.0 * (hi[1] - lo[1])]), center, 25.0

    def attributes(self, palette: Any) -> tuple[np.ndarray, np.ndarray]:
        """Uniform skin, no occlusion, no lip/hair/collar outlines (the shader's -1 = outside)."""
        n = len(self.v_template)
        color = np.tile(np.append(palette.skin, palette.skin_spec), (n, 1))
        aux = np.tile([1.0, -1.0, -1.0, -1.0], (n, 1))
        return color.astype("f4"), aux.astype("f4")

    def pose(self, coeffs: np.ndarray) -> np.ndarray:
        """(56,) flame56 coefficients -> (V, 3) vertices: expressions, then skinning."""
        c = np.asarray(coeffs, np.float64)
        v = self.v_template + self.expr_dirs @ c[:N_EXP]  # (V, 3, 50) @ (50,) -> (V, 3)
        joints = self.j_regressor @ v  # (J, 3)
        rotvecs = np.zeros((len(joints), 3))
        rotvecs[JAW_JOINT], rotvecs[HEAD_JOINT] = c[N_EXP:N_EXP + 3], c[N_EXP + 3:N_EXP + 6]
        rots = Rotation.from_rotvec(rotvecs).as_matrix()  # (J, 3, 3)
        v = v + self.posedirs @ (rots[1:] - np.eye(3)).reshape(-1)  # pose correctives
        world = np.zeros((len(joints), 4, 4))
        for j in range(len(joints)):
            local = np.eye(4)
            local[:3, :3] = rots[j]
            local[:3, 3] = joints[j] - (joints[self.parents[j]] if j else 0.0)
            world[j] = local if j == 0 else world[self.parents[j]] @ local
        world[:, :3, 3] -= np.einsum("jab,jb->ja", world[:, :3, :3], joints)  # from rest
        skin = np.einsum("vj,jab->vab", self.weights, world)  # (V, 4, 4)
        return np.einsum("vab,vb->va", skin[:, :3, :3], v) + skin[:, :3, 3]
