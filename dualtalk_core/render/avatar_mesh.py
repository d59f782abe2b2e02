"""Procedural geometry of the stylised head (internal to `dualtalk_core.render.avatar`).

No ARKit face mesh can be downloaded here, so the head is built from analytic pieces: a
star-shaped skin (a radial function over directions, triangulated as the convex hull of points on
the sphere) with a mouth hole and lip roll, eyeballs, eyelid shells, brow tubes, teeth, a tongue,
a mouth cavity, ears and a static neck/torso. Frame: x to the viewer's right (the face's left),
y up, z out of the face; head height ~2 units. Features are placed by longitude/latitude (rad)
of the direction from the head centre; lids and brows are functions of their parameters, so the
targets in `avatar.py` rebuild them with moved parameters.
"""
from __future__ import annotations

from typing import Union

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial import ConvexHull

REGIONS = ("skin", "brow", "eye", "lid", "teeth", "tongue", "body", "mouth")
Arr = Union[np.ndarray, float]  # the geometry functions take arrays or scalars
SKIN, BROW, EYE, LID, TEETH, TONGUE, BODY, MOUTH = range(len(REGIONS))
EYE_LON, EYE_LAT, EYE_R = 0.37, 0.0, 0.17  # eye direction (rad) and eyeball radius
MOUTH_LAT, MOUTH_W, MOUTH_H = -0.50, 0.29, 0.010  # mouth line, half width, rim half height (rad)


def smooth(e0: Arr, e1: Arr, x: Arr) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def dirs(lon: Arr, lat: Arr) -> np.ndarray:
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    return np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], -1)


def gauss(lon: Arr, lat: Arr, c: tuple[float, float, float, float]) -> np.ndarray:
    """Anisotropic bump at (lon0, lat0) with widths (s_lon, s_lat), mirrored if asked by caller."""
    lon0, lat0, s_lon, s_lat = c
    return np.exp(-0.5 * (((lon - lon0) / s_lon) ** 2 + ((lat - lat0) / s_lat) ** 2))


def _pair(lon: Arr, lat: Arr, c: tuple[float, float, float, float]) -> np.ndarray:
    return gauss(lon, lat, c) + gauss(lon, lat, (-c[0],) + c[1:])


def mouth_line(lon: Arr) -> np.ndarray:
    """Latitude of the closed-mouth line; the corners sit a touch higher, as on a relaxed face."""
    return MOUTH_LAT + 0.012 * np.minimum((np.asarray(lon) / MOUTH_W) ** 2, 1.5)


def hairline(lon: Arr) -> np.ndarray:
    """Latitude of the hairline: from the forehead down past the ears to the nape."""
    a = np.abs(lon)
    fringe = 0.07 * np.exp(-(((lon - 0.3) / 0.22) ** 2))
    fringe -= 0.08 * np.exp(-(((lon + 0.2) / 0.3) ** 2))  # a swept fringe
    return 0.52 + fringe - 0.30 * smooth(0.45, 1.45, a) - 0.55 * smooth(1.7, 2.9, a)


def skin_radius(lon: Arr, lat: Arr) -> np.ndarray:
    """Distance from the head centre to the skin along (lon, lat): ellipsoid plus features."""
    x, y, z = np.moveaxis(dirs(lon, lat), -1, 0)
    low = smooth(0.05, -0.85, y)
    ax = 0.80 * (1.0 - 0.22 * low * smooth(-0.3, 0.6, z))  # the jaw narrows to the chin
    az = 0.86 + 0.06 * low
    ay = 0.94 + 0.1 * low  # a rounder crown, a longer chin
    r = 1.0 / np.sqrt((x / ax) ** 2 + (y / ay) ** 2 + (z / az) ** 2)
    r += 0.19 * gauss(lon, lat, (0.0, -0.22, 0.075, 0.07))  # nose tip
    r += 0.07 * gauss(lon, lat, (0.0, -0.08, 0.055, 0.12))  # nose bridge
    r += 0.045 * _pair(lon, lat, (0.085, -0.255, 0.045, 0.035))  # nostril wings
    r -= 0.06 * _pair(lon, lat, (EYE_LON, EYE_LAT, 0.12, 0.10))  # eye sockets
    r += 0.035 * _pair(lon, lat, (0.30, 0.20, 0.20, 0.06))  # brow ridge
    r += 0.045 * _pair(lon, lat, (0.44, -0.30, 0.15, 0.14))  # cheeks
    r += 0.09 * gauss(lon, lat, (0.0, -0.84, 0.24, 0.13))  # chin
    r += 0.035 * gauss(lon, lat, (0.0, MOUTH_LAT + 0.040, 0.20, 0.030))  # upper lip
    r += 0.045 * gauss(lon, lat, (0.0, MOUTH_LAT - 0.055, 0.19, 0.040))  # lower lip
    r += 0.02 * gauss(lon, lat, (0.0, MOUTH_LAT + 0.10, 0.04, 0.05))  # philtrum
    line = hairline(lon)
    volume = 0.05 + 0.03 * smooth(0.3, 1.2, lat)  # fuller on top
    return r + volume * smooth(line - 0.02, line + 0.22, lat)  # hair, on a gentle ramp


def skin_point(lon: Arr, lat: Arr) -> np.ndarray:
    return dirs(lon, lat) * skin_radius(lon, lat)[..., None]


def _skin_frame(lon: Arr, lat: Arr) -> tuple[np.ndarray, ...]:
    """Point, outward normal and surface 'up' at (lon, lat), by central differences."""
    e = 1e-4
    du = skin_point(lon + e, lat) - skin_point(lon - e, lat)
    dv = skin_point(lon, lat + e) - skin_point(lon, lat - e)
    n = np.cross(du, dv)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return skin_point(lon, lat), n, dv / np.linalg.norm(dv, axis=-1, keepdims=True)


def _fibonacci(n: int, zoom: float) -> np.ndarray:
    """Even points on the sphere, drawn towards +z by a conformal zoom (the face gets ~1/zoom^2
    times the density; conformal maps keep the triangles well shaped)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    rho, phi = np.sqrt(1.0 - z * z), i * np.pi * (3.0 - np.sqrt(5.0))
    q = np.stack([rho * np.cos(phi), rho * np.sin(phi)], -1) / (1.0 + z)[:, None] * zoom
    q2 = np.sum(q * q, -1)
    return np.column_stack([2.0 * q / (1.0 + q2)[:, None], (1.0 - q2) / (1.0 + q2)])


def _orient(verts: np.ndarray, faces: np.ndarray, outward: np.ndarray, per_face: bool = False
            ) -> np.ndarray:
    """Wind triangles counter-clockwise seen from `outward` (per face), for front-face shading.

    Grids are consistently wound by construction, so by default the whole part flips or not by
    majority (folds such as the lid rims would otherwise flip face by face).
    """
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), outward) < 0
    if not per_face:
        flip[:] = flip.mean() > 0.5
    faces = faces.copy()
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return faces


def _grid_faces(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Two triangles per quad of a rows x cols vertex grid (row-major), optionally wrapped."""
    c_end = cols if wrap else cols - 1
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(c_end), indexing="ij")
    a, b = r * cols + c, r * cols + (c + 1) % cols
    a2, b2 = a + cols, b + cols
    quads = np.stack([a, a2, b2, a, b2, b], -1).reshape(-1, 3)
    return quads.astype(np.int64)


class Parts:
    """Accumulates mesh parts with per-vertex attributes; ranges are kept for the targets."""

    KEYS = ("region", "lon", "lat", "jaw", "ao", "lash", "lip", "hair", "shirt")

    def __init__(self) -> None:
        self.verts: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.attrs: dict[str, list[np.ndarray]] = {k: [] for k in self.KEYS + ("local",)}
        self.ranges: dict[str, slice] = {}
        self.n = 0

    def add(self, name: str, verts: np.ndarray, faces: np.ndarray, region: int,
            **attrs: np.ndarray | float) -> slice:
        n = len(verts)
        defaults = {"lon": np.nan, "lat": np.nan, "jaw": 0.0, "ao": 1.0, "lash": 0.0,
                    "lip": -1.0, "hair": -1.0, "shirt": -1.0}
        self.verts.append(np.asarray(verts, float))
        self.faces.append(np.asarray(faces) + self.n)
        self.attrs["region"].append(np.full(n, region, np.int8))
        for key, default in defaults.items():
            self.attrs[key].append(np.broadcast_to(attrs.get(key, default), (n,)).astype(float))
        self.attrs["local"].append(np.broadcast_to(attrs.get("local", 0.0), (n, 3)).astype(float))
        self.ranges[name] = slice(self.n, self.n + n)
        self.n += n
        return self.ranges[name]

    def cat(self, key: str) -> np.ndarray:
        return np.concatenate(self.attrs[key])


RING = 80  # vertices on the mouth-hole rim


def mouth_fields(lon: Arr, lat: Arr) -> dict[str, np.ndarray]:
    """Smooth weights around the mouth, shared by the jaw, the lip colour and the lip targets.

    `upper` is 1 above the mouth line and 0 below; near and beyond the corners the transition
    widens, so the corners open half as far as the middle and the cheeks stretch smoothly.
    """
    mv, mu = lat - mouth_line(lon), np.abs(lon) / MOUTH_W
    env = np.clip(1.0 - mu ** 2, 0.0, 1.0) ** 0.25
    tau = 0.006 + 0.22 * (1.0 - env)
    upper = smooth(-tau, tau, mv)
    span = smooth(1.5, 0.8, mu)
    bow = 0.012 * np.exp(-(((mu - 0.22) / 0.14) ** 2)) - 0.01 * np.exp(-((mu / 0.09) ** 2))
    t = 1.0 - (mu / 1.05) ** 2
    height = np.where(mv > 0, 0.048 + bow, 0.066) * np.sign(t) * np.abs(t) ** 0.6
    return {
        "upper": upper, "lower": 1.0 - upper, "span": span,
        "upper_lip": upper * span * np.exp(-((mv / 0.085) ** 2)),
        "lower_lip": (1.0 - upper) * span * np.exp(-((mv / 0.10) ** 2)),
        "lip": height - np.abs(mv),  # signed distance (rad) to the lip outline, + on lips
        "area": np.exp(-0.5 * ((lon / (1.1 * MOUTH_W)) ** 2 + (mv / 0.12) ** 2)),
    }


def _mouth_ring(grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 2.0 * np.pi, RING, endpoint=False)
    lon = (MOUTH_W + grow) * np.cos(t)
    return lon, mouth_line(lon) + (MOUTH_H + grow) * np.sin(t)


def _add_skin(parts: Parts, n_points: int = 5000, zoom: float = 0.5) -> None:
    """The skin, triangulated on the sphere, with a lens-shaped mouth hole and a lip roll."""
    d = _fibonacci(n_points, zoom)
    lon, lat = np.arctan2(d[:, 0], d[:, 2]), np.arcsin(d[:, 1])
    # Concentric rings around the hole (the rim last) keep the triangles there regular.
    m = 0.04
    keep = (lon / (MOUTH_W + m)) ** 2 + ((lat - mouth_line(lon)) / (MOUTH_H + m)) ** 2 >= 1.0
    rings = [_mouth_ring(g) for g in (0.028, 0.013, 0.0)]
    r_lon, r_lat = rings[-1]
    lon = np.concatenate([lon[keep]] + [r[0] for r in rings])
    lat = np.concatenate([lat[keep]] + [r[1] for r in rings])
    ring = np.arange(len(lon) - RING, len(lon))
    sphere = dirs(lon, lat)
    faces = ConvexHull(sphere).simplices
    faces = faces[~np.all(faces >= ring[0], axis=1)]  # triangles spanning the hole
    faces = _orient(sphere, faces, sphere[faces].sum(1), per_face=True)
    # Lip roll: a band from the rim inwards, so an open mouth shows lips with thickness.
    s_lat = mouth_line(r_lon) + 0.3 * (r_lat - mouth_line(r_lon))
    skirt = dirs(r_lon, s_lat) * (skin_radius(r_lon, r_lat) - 0.05)[:, None]
    i = np.arange(RING)
    a, b, c, e = ring[i], ring[(i + 1) % RING], len(lon) + (i + 1) % RING, len(lon) + i
    band = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, e], -1)])
    verts = np.vstack([skin_point(lon, lat), skirt])
    band = _orient(verts, band, skin_point(0.0, MOUTH_LAT) - verts[band].mean(1))
    lon, lat = np.concatenate([lon, r_lon]), np.concatenate([lat, r_lat])
    fields = mouth_fields(lon, lat)
    jaw = fields["lower"] * smooth(-0.35, 0.05, verts[:, 2])
    inner = np.arange(len(lon)) >= len(lon) - RING
    ao = 1.0 - 0.25 * _pair(lon, lat, (0.075, -0.29, 0.03, 0.025))  # under the nostrils
    ao -= 0.2 * _pair(lon, lat, (MOUTH_W * 1.02, float(mouth_line(MOUTH_W)), 0.03, 0.03))
    ao -= 0.2 * smooth(-0.12, 0.0, lat - hairline(lon)) * smooth(0.02, 0.0, lat - hairline(lon))
    parts.add("skin", verts, np.vstack([faces, band]), SKIN, lon=lon, lat=lat, jaw=jaw,
              ao=np.where(inner, 0.45, ao), lip=np.where(inner, 0.02, fields["lip"]),
              hair=lat - hairline(lon))


def _sphere(rows: int, cols: int, max_polar: float = np.pi) -> np.ndarray:
    """(rows*cols, 3) unit vectors of a latitude grid around +z (pole first)."""
    th, ph = np.meshgrid(np.linspace(0.0, max_polar, rows),
                         np.linspace(0.0, 2.0 * np.pi, cols, endpoint=False), indexing="ij")
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(
        -1, 3)


def _add_ellipsoid(parts: Parts, name: str, center: np.ndarray, radii: np.ndarray,
                   region: int, inward: bool = False, **attrs: np.ndarray | float) -> slice:
    unit = _sphere(12, 20)
    verts = center + unit * radii
    faces = _grid_faces(12, 20, True)
    faces = _orient(verts, faces, (verts[faces].mean(1) - center) * (-1.0 if inward else 1.0))
    return parts.add(name, verts, faces, region, **attrs)


def eye_center(side: float) -> np.ndarray:
    """Eyeball centre; side +1 is the face's left eye (+x)."""
    lon = side * EYE_LON
    return skin_point(lon, EYE_LAT) - dirs(lon, EYE_LAT) * 0.40 * EYE_R


LID_UP, LID_LOW = (2.6, 0.60, 1.10), (-2.4, -0.80, 1.07)  # back angle, edge angle, radius/EYE_R


def lid_points(side: float, back: float, edge: float, scale: float) -> np.ndarray:
    """Eyelid shell around the eyeball (rows from the hidden back to the lash rim, 28 columns).

    Angles turn about the eye's x axis from straight ahead (+ = up); the last row folds in to
    the eyeball so the lid edge reads as a rounded margin.
    """
    beta = np.linspace(-1.3, 1.3, 28)
    th = np.append(back + (edge - back) * np.linspace(0.0, 1.0, 9), edge)
    rad = np.append(np.full(9, scale * EYE_R), 1.012 * EYE_R)
    ring = np.stack([np.zeros_like(th), np.sin(th), np.cos(th)], -1)  # (rows, 3)
    pts = (np.cos(beta)[None, :, None] * ring[:, None, :]
           + np.sin(beta)[None, :, None] * np.array([1.0, 0.0, 0.0]))
    return (eye_center(side) + rad[:, None, None] * pts).reshape(-1, 3)


def _add_eye(parts: Parts, side: float, tag: str) -> None:
    unit = _sphere(16, 28, 2.3)
    c = eye_center(side)
    faces = _grid_faces(16, 28, True)
    faces = _orient(unit, faces, unit[faces].mean(1))
    parts.add("eye" + tag, c + EYE_R * unit, faces, EYE, local=unit)
    lash = np.repeat(np.append(np.linspace(0.0, 1.0, 9), 1.0), 28)
    for name, (back, edge, scale) in (("lid_up", LID_UP), ("lid_low", LID_LOW)):
        verts = lid_points(side, back, edge, scale)
        faces = _orient(verts, _grid_faces(10, 28, False), verts[_grid_faces(10, 28, False)]
                        .mean(1) - c)
        parts.add(name + tag, verts, faces, LID, lash=lash if name == "lid_up" else 0.3 * lash,
                  ao=0.9)


def brow_points(side: float, dlat: np.ndarray | float = 0.0, dlon: np.ndarray | float = 0.0
                ) -> np.ndarray:
    """A tapered tube lying on the skin above the eye (22 x 10 grid, inner end first).

    `dlat`/`dlon` shift the 22 centre-line samples (dlon > 0 = outwards); the brow targets are
    these tubes rebuilt on a moved centre line, so the brow slides along the skin.
    """
    u = np.linspace(0.0, 1.0, 22)
    lon = side * (0.10 + 0.44 * u + dlon)
    lat = 0.215 + 0.05 * np.sin(np.pi * u ** 0.8) - 0.06 * u ** 2 + dlat
    p, n, up = _skin_frame(lon, lat)
    half = 0.032 * (1.0 - 0.55 * u) * np.sqrt(smooth(-0.05, 0.12, u) * smooth(1.0, 0.85, u))
    psi = np.linspace(0.0, 2.0 * np.pi, 10, endpoint=False)
    pts = (p[:, None] + up[:, None] * (half[:, None] * np.cos(psi))[..., None]
           + n[:, None] * (0.016 * np.sin(psi) - 0.002)[None, :, None])
    return pts.reshape(-1, 3)


def _add_brow(parts: Parts, side: float, tag: str) -> None:
    verts = brow_points(side)
    faces = _grid_faces(22, 10, True)
    axis = np.repeat(brow_points(side).reshape(22, 10, 3).mean(1), 10, axis=0)
    parts.add("brow" + tag, verts, _orient(verts, faces, verts[faces].mean(1)
                                           - axis[faces].mean(1)), BROW)


def _add_mouth_inside(parts: Parts) -> None:
    """Upper teeth (fixed to the skull), lower teeth and tongue (carried by the jaw), cavity."""
    m = skin_point(0.0, MOUTH_LAT)
    x = np.linspace(-0.2, 0.2, 31)
    for name, depth, ys, jaw in (("teeth_up", 0.062, (0.07, 0.01, -0.004), 0.0),
                                 ("teeth_low", 0.075, (-0.10, -0.035, -0.024), 1.0)):
        y = m[1] + np.array(ys)
        z = m[2] - depth - 1.7 * x ** 2
        verts = np.stack(np.broadcast_arrays(x[None], y[:, None], z[None]), -1).reshape(-1, 3)
        faces = _grid_faces(3, 31, False)
        ref = np.array([0.0, m[1], m[2] - depth - 0.3])
        ao = np.tile(0.9 - 0.6 * np.abs(x) / 0.2, 3)
        parts.add(name, verts, _orient(verts, faces, verts[faces].mean(1) - ref), TEETH,
                  jaw=jaw, ao=ao)
    _add_ellipsoid(parts, "tongue", m + np.array([0.0, -0.1, -0.3]),
                   np.array([0.14, 0.045, 0.17]), TONGUE, jaw=1.0, ao=0.4)
    _under_skin(parts.verts[-1], 0.08)
    # Faces are culled, so the mouth's inside is a dark bag facing inwards: only its far wall
    # is ever front-facing, and it shows only through the open lips.
    _add_ellipsoid(parts, "cavity", m + np.array([0.0, -0.08, -0.3]),
                   np.array([0.34, 0.28, 0.3]), MOUTH, inward=True, ao=0.5)
    _under_skin(parts.verts[-1], 0.1)
    parts.attrs["jaw"][-1] = smooth(m[1] + 0.05, m[1] - 0.1, parts.verts[-1][:, 1])


def _under_skin(p: np.ndarray, depth: float) -> None:
    """Pull points (in place) to at least `depth` under the rest skin, so inner parts never
    poke through it when the lips and chin move."""
    d = p / np.linalg.norm(p, axis=1, keepdims=True)
    limit = skin_radius(np.arctan2(d[:, 0], d[:, 2]), np.arcsin(d[:, 1])) - depth
    p *= np.minimum(1.0, limit / np.linalg.norm(p, axis=1))[:, None]


def _add_ears(parts: Parts) -> None:
    for side, tag in ((1.0, "L"), (-1.0, "R")):
        lon, lat = side * 1.50, -0.08
        c = skin_point(lon, lat) + np.array([side * 0.01, 0.0, -0.02])
        _add_ellipsoid(parts, "ear" + tag, c, np.array([0.06, 0.19, 0.12]), SKIN, lon=lon,
                       lat=lat, ao=0.85)


def _add_body(parts: Parts) -> None:
    """Neck and shoulders as a lathe; static, the head turns on top of it."""
    knots = np.array([-2.9, -2.35, -1.95, -1.65, -1.45, -1.22, -0.9, -0.3])
    radius = PchipInterpolator(knots, [1.5, 1.47, 1.36, 1.12, 0.72, 0.38, 0.33, 0.32])
    depth = PchipInterpolator(knots, [0.55, 0.55, 0.55, 0.58, 0.72, 0.95, 1.0, 1.0])
    z0 = PchipInterpolator(knots, [-0.32, -0.32, -0.32, -0.3, -0.22, -0.16, -0.14, -0.12])
    y = np.concatenate([np.linspace(-0.3, -1.1, 8, endpoint=False),  # dense at the collar
                        np.linspace(-1.1, -1.6, 20, endpoint=False), np.linspace(-1.6, -2.9, 12)])
    phi = np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False)
    r = radius(y)[:, None]
    verts = np.stack(np.broadcast_arrays(r * np.sin(phi), y[:, None],
                                         z0(y)[:, None] + depth(y)[:, None] * r * np.cos(phi)),
                     -1).reshape(-1, 3)
    faces = _grid_faces(len(y), 40, True)
    axis = np.column_stack([0 * y, y, z0(y)]).repeat(40, axis=0)
    collar = -1.32 + 0.1 * np.clip(np.cos(phi), 0, 1) ** 4  # a shallow scoop at the front
    shirt = (collar[None] - y[:, None]).reshape(-1)
    parts.add("body", verts, _orient(verts, faces, verts[faces].mean(1) - axis[faces].mean(1)),
              BODY, shirt=shirt)


def build_parts() -> tuple[Parts, int]:
    """All parts, head first; returns them and the number of head vertices (these turn)."""
    parts = Parts()
    _add_skin(parts)
    for side, tag in ((1.0, "L"), (-1.0, "R")):
        _add_eye(parts, side, tag)
        _add_brow(parts, side, tag)
    _add_mouth_inside(parts)
    _add_ears(parts)
    n_head = parts.n
    _add_body(parts)
    return parts, n_head
