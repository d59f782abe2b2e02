"""Offscreen face renderer: arkit52 coefficients (55,) -> RGB frame (H, W, 3) uint8.

moderngl on an EGL standalone context: Mesa's llvmpipe rasterises on the CPU, so the demo video
renders on any Debian machine without a display or GPU. One context, one static and one
dynamic vertex buffer per renderer, reused for every frame; per frame only the deformed
positions and normals are uploaded. Shading is stylised: wrapped diffuse key light, fill, rim,
hemisphere ambient, baked occlusion, iris/pupil and lip/hair/collar outlines drawn per pixel,
back faces culled (the mouth's inside is an inward-facing bag), then an FXAA pass.
The optional `rig="flame56"` path draws the user's FLAME model instead (see render_flame).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
from scipy import sparse

from dualtalk_core.render import avatar as av

LOG = logging.getLogger(__name__)
RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Palette:
    """A colour scheme (sRGB in [0, 1]); `glow` makes the iris emissive (the robot's eyes)."""

    skin: RGB
    lip: RGB
    hair: RGB
    brow: RGB
    iris: RGB
    sclera: RGB
    pupil: RGB
    lash: RGB
    teeth: RGB
    tongue: RGB
    mouth: RGB
    neck: RGB
    shirt: RGB
    bg_top: RGB
    bg_bottom: RGB
    skin_spec: float = 0.12
    hair_spec: float = 0.08
    glow: float = 0.0


STYLES: dict[str, Palette] = {
    # A white-and-slate robot with glowing cyan eyes; the partner is a person with brown hair.
    "robot": Palette(
        skin=(0.90, 0.92, 0.95), lip=(0.52, 0.58, 0.68), hair=(0.26, 0.31, 0.40),
        brow=(0.20, 0.24, 0.32), iris=(0.25, 0.85, 1.00), sclera=(0.10, 0.12, 0.16),
        pupil=(0.02, 0.03, 0.05), lash=(0.12, 0.14, 0.20), teeth=(0.86, 0.90, 0.95),
        tongue=(0.45, 0.55, 0.68), mouth=(0.05, 0.07, 0.11), neck=(0.32, 0.36, 0.44),
        shirt=(0.22, 0.26, 0.34), bg_top=(0.80, 0.87, 0.95), bg_bottom=(0.50, 0.60, 0.72),
        skin_spec=0.45, hair_spec=0.5, glow=0.9),
    "partner": Palette(
        skin=(0.94, 0.74, 0.62), lip=(0.80, 0.45, 0.45), hair=(0.30, 0.19, 0.12),
        brow=(0.26, 0.16, 0.10), iris=(0.36, 0.24, 0.14), sclera=(0.96, 0.95, 0.93),
        pupil=(0.04, 0.03, 0.03), lash=(0.14, 0.09, 0.07), teeth=(0.97, 0.96, 0.92),
        tongue=(0.72, 0.30, 0.32), mouth=(0.24, 0.06, 0.07), neck=(0.94, 0.74, 0.62),
        shirt=(0.85, 0.55, 0.25), bg_top=(0.97, 0.92, 0.85), bg_bottom=(0.78, 0.68, 0.60),
        skin_spec=0.12, hair_spec=0.08),
}

_VERTEX = """
#version 330
uniform mat4 u_mvp;
in vec3 in_pos; in vec3 in_norm; in vec4 in_color; in vec4 in_aux;
out vec3 v_pos; out vec3 v_norm; out vec4 v_color; out vec4 v_aux;
void main() {
    v_pos = in_pos; v_norm = in_norm; v_color = in_color; v_aux = in_aux;
    gl_Position = u_mvp * vec4(in_pos, 1.0);
}
"""
# Two programs share the vertex stage: llvmpipe shades every branch of an `if`, so the eyes
# get their own. Colours arrive linear (gamma 2 so that sqrt() encodes); in_aux.x = occlusion.
_LIGHTING = """
#version 330
uniform vec3 u_cam; uniform vec3 u_key; uniform vec3 u_fill;
in vec3 v_pos; in vec3 v_norm; in vec4 v_color; in vec4 v_aux;
out vec4 f_color;
vec3 shade(vec3 base, vec3 n, vec3 v, float spec, float shine, float ao) {
    float k = max(dot(n, u_key) * 0.74 + 0.26, 0.0);
    vec3 col = base * (vec3(1.0, 0.95, 0.88) * k * ao
                       + vec3(0.16, 0.2, 0.28) * max(dot(n, u_fill), 0.0)
                       + mix(vec3(0.1, 0.08, 0.08), vec3(0.16, 0.18, 0.24), 0.5 + 0.5 * n.y) * ao);
    vec3 h = normalize(u_key + v);
    col += spec * ao * pow(max(dot(n, h), 0.0), shine);
    float r = 1.0 - max(dot(n, v), 0.0);
    return col + 0.35 * r * r * r * ao * max(n.y * 0.5 + 0.5, 0.0);
}
"""
_PLAIN = _LIGHTING + """
uniform vec3 u_lip; uniform vec3 u_hair; uniform vec3 u_shirt; uniform float u_hair_spec;
float inside(float d) { float w = max(fwidth(d), 1e-5); return smoothstep(-w, w, d); }
void main() {
    float hair = inside(v_aux.z);
    vec3 base = mix(mix(mix(v_color.rgb, u_hair, hair), u_lip, inside(v_aux.y)), u_shirt,
                    inside(v_aux.w));
    vec3 col = shade(base, normalize(v_norm), normalize(u_cam - v_pos),
                     mix(v_color.a, u_hair_spec, hair), 28.0, v_aux.x);
    f_color = vec4(sqrt(col), 1.0);
}
"""
# Eyeballs: in_aux.yzw is the rest direction from the eye centre; iris and pupil are drawn by
# the angle to the eye's forward axis (compared as cosines), so they stay crisp at any size.
_EYE = _LIGHTING + """
uniform vec3 u_iris; uniform vec3 u_sclera; uniform vec3 u_pupil; uniform float u_glow;
void main() {
    float c = normalize(v_aux.yzw).z;
    float iris = smoothstep(0.872, 0.882, c), pupil = smoothstep(0.973, 0.977, c);
    vec3 ic = u_iris * (0.6 + 0.6 * smoothstep(0.88, 0.97, c));
    vec3 base = mix(mix(u_sclera, ic, iris), u_pupil, pupil);
    vec3 col = shade(base, normalize(v_norm), normalize(u_cam - v_pos), v_color.a, 70.0, 1.0);
    col += u_glow * ic * iris * (1.0 - pupil);
    f_color = vec4(sqrt(col), 1.0);
}
"""
_BG_VERTEX = """
#version 330
in vec2 in_xy;
out vec2 v_xy;
void main() { v_xy = in_xy; gl_Position = vec4(in_xy, 0.9999, 1.0); }
"""
_BG_FRAGMENT = """
#version 330
uniform vec3 u_top; uniform vec3 u_bottom;
in vec2 v_xy;
out vec4 f_color;
void main() {
    vec3 c = mix(u_bottom, u_top, 0.5 + 0.5 * v_xy.y);
    c *= 1.0 - 0.18 * dot(v_xy * 0.7, v_xy * 0.7);
    f_color = vec4(c, 1.0);
}
"""


# A small FXAA-style pass: where local contrast is high, average along the edge direction.
# On llvmpipe it costs a few ms, where 4x MSAA triples the frame time.
_FXAA_FRAGMENT = """
#version 330
uniform sampler2D u_image; uniform vec2 u_texel;
in vec2 v_xy;
out vec4 f_color;
float luma(vec3 c) { return dot(c, vec3(0.3, 0.59, 0.11)); }
vec3 at(vec2 uv) { return texture(u_image, uv).rgb; }
float px(ivec2 p) { return luma(texelFetch(u_image, p, 0).rgb); }
void main() {
    vec2 uv = 0.5 + 0.5 * v_xy;
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 c = texelFetch(u_image, p, 0).rgb;
    float nw = px(p + ivec2(-1, 1)), ne = px(p + ivec2(1, 1));
    float sw = px(p + ivec2(-1, -1)), se = px(p + ivec2(1, -1));
    float m = luma(c);
    float lo = min(m, min(min(nw, ne), min(sw, se))), hi = max(m, max(max(nw, ne), max(sw, se)));
    if (hi - lo < max(0.03, 0.1 * hi)) { f_color = vec4(c, 1.0); return; }
    vec2 dir = vec2((sw + se) - (nw + ne), (nw + sw) - (ne + se));
    float reduce = max(0.03 * (nw + ne + sw + se), 1.0 / 128.0);
    dir = clamp(dir / (min(abs(dir.x), abs(dir.y)) + reduce), -8.0, 8.0) * u_texel;
    vec3 a = 0.5 * (at(uv - dir / 6.0) + at(uv + dir / 6.0));
    vec3 b = 0.5 * a + 0.25 * (at(uv - 0.5 * dir) + at(uv + 0.5 * dir));
    float lb = luma(b);
    f_color = vec4((lb < lo || lb > hi) ? a : b, 1.0);
}
"""


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    f = target - eye
    f /= np.linalg.norm(f)
    s = np.cross(f, [0.0, 1.0, 0.0])
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = s, u, -f
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def _perspective(fovy_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    t = 1.0 / np.tan(np.radians(fovy_deg) / 2.0)
    proj = np.zeros((4, 4))
    proj[0, 0], proj[1, 1] = t / aspect, t
    proj[2, 2], proj[2, 3] = (far + near) / (near - far), 2.0 * far * near / (near - far)
    proj[3, 2] = -1.0
    return proj


def create_context() -> Any:
    """A headless OpenGL 3.3+ context through EGL, with an actionable error if it fails."""
    try:
        import moderngl
    except ImportError as exc:
        raise RuntimeError("the face renderer needs moderngl: pip install 'moderngl>=5.10'"
                           ) from exc
    try:
        return moderngl.create_standalone_context(backend="egl")  # type: ignore[arg-type]
    except Exception as exc:  # glcontext raises plain Exception subclasses on EGL failures
        raise RuntimeError(
            "could not create an EGL OpenGL context for offscreen rendering "
            f"({exc}); on Debian/Ubuntu install the packages libegl1 and libgl1-mesa-dri "
            "(Mesa llvmpipe renders on the CPU; no display or GPU is needed)") from exc


class MeshShader:
    """GL programs and buffers for one triangle mesh with static colours and moving vertices.

    `color`: (V, 4) sRGB + specular; `aux`: (V, 4) shader data; `eye` marks the eyeball faces
    (drawn by the iris program). The caller uploads positions each frame.
    """

    def __init__(self, ctx: Any, faces: np.ndarray, color: np.ndarray, aux: np.ndarray,
                 eye: np.ndarray | None = None) -> None:
        self.ctx = ctx
        self.n_vertices = len(color)
        eye = np.zeros(len(faces), bool) if eye is None else np.asarray(eye, bool)
        faces = np.concatenate([faces[~eye], faces[eye]]).astype(np.int64)
        self.n_plain = int((~eye).sum())
        self.programs = [ctx.program(vertex_shader=_VERTEX, fragment_shader=_PLAIN),
                         ctx.program(vertex_shader=_VERTEX, fragment_shader=_EYE)]
        linear = np.column_stack([_linear_rgb(color[:, :3]), color[:, 3]])
        self.vbo_static = ctx.buffer(np.hstack([linear, aux]).astype("f4").tobytes())
        self.vbo_dynamic = ctx.buffer(reserve=self.n_vertices * 6 * 4)
        self.ibo = ctx.buffer(faces.astype("i4").tobytes())
        self.vaos = [ctx.vertex_array(prog, [
            (self.vbo_dynamic, "3f 3f", "in_pos", "in_norm"),
            (self.vbo_static, "4f 4f", "in_color", "in_aux")], index_buffer=self.ibo)
            for prog in self.programs]
        rows, cols = faces.reshape(-1), np.repeat(np.arange(len(faces)), 3)
        # Vertex normal = sum of adjacent area-weighted face normals: one sparse product a frame.
        self.adjacency = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                           shape=(self.n_vertices, len(faces)))
        self.faces = faces
        self._buffer = np.zeros((self.n_vertices, 6), np.float32)

    def upload(self, verts: np.ndarray) -> None:
        v = np.asarray(verts, np.float32)
        a, b, c = v[self.faces[:, 0]], v[self.faces[:, 1]], v[self.faces[:, 2]]
        normals = self.adjacency @ np.cross(b - a, c - a)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        self._buffer[:, :3], self._buffer[:, 3:] = v, normals
        self.vbo_dynamic.write(self._buffer)

    def render(self) -> None:
        self.vaos[0].render(vertices=3 * self.n_plain)
        n_eye = len(self.faces) - self.n_plain
        if n_eye:
            self.vaos[1].render(vertices=3 * n_eye, first=3 * self.n_plain)

    def set_uniforms(self, palette: Palette, mvp: np.ndarray, cam: np.ndarray) -> None:
        key, fill = np.array([-0.45, 0.55, 0.7]), np.array([0.7, 0.1, 0.6])
        common = {"u_cam": tuple(cam), "u_key": tuple(key / np.linalg.norm(key)),
                  "u_fill": tuple(fill / np.linalg.norm(fill)), "u_lip": _linear_rgb(palette.lip),
                  "u_hair": _linear_rgb(palette.hair), "u_shirt": _linear_rgb(palette.shirt),
                  "u_hair_spec": palette.hair_spec}
        eye = {"u_iris": _linear_rgb(palette.iris), "u_sclera": _linear_rgb(palette.sclera),
               "u_pupil": _linear_rgb(palette.pupil), "u_glow": palette.glow}
        for prog, values in zip(self.programs, (common, {**common, **eye})):
            prog["u_mvp"].write(mvp.T.astype("f4").tobytes())
            for name, value in values.items():
                if name in prog:  # the compiler drops uniforms a program does not use
                    prog[name].value = value


def _linear_rgb(rgb: RGB | np.ndarray) -> Any:
    """sRGB-ish -> linear with gamma 2 (the shaders encode with sqrt, cheap on llvmpipe)."""
    out = np.asarray(rgb, float) ** 2
    return tuple(out) if out.ndim == 1 else out


class FaceRenderer:
    """Renders a face per frame; create once, call `render` per frame from the same thread.

    `style`: "robot", "partner" or a Palette. Edges are smoothed by a cheap FXAA pass (`fxaa`);
    `samples` > 0 adds MSAA, a little nicer and ~3x slower on llvmpipe. `rig="flame56"` draws
    the user's FLAME model instead (`flame_model`: a FLAME .npz, see `render_flame`).
    """

    def __init__(self, width: int = 512, height: int = 512, style: str | Palette = "robot",
                 fxaa: bool = True, samples: int = 0, rig: str = "arkit52",
                 flame_model: str | None = None) -> None:
        if not (16 <= int(width) <= 4096 and 16 <= int(height) <= 4096):
            raise ValueError(f"width and height must be in [16, 4096], got {width}x{height}")
        if isinstance(style, str) and style not in STYLES:
            raise ValueError(f"unknown style {style!r}; expected one of {sorted(STYLES)}")
        self.size = (int(width), int(height))
        self.palette = STYLES[style] if isinstance(style, str) else style
        self.source: Any = _make_source(rig, flame_model)
        self.ctx = create_context()
        self.samples = max(0, min(int(samples), self.ctx.max_samples))
        self._make_targets(fxaa)
        color, aux = self.source.attributes(self.palette)
        self.mesh = MeshShader(self.ctx, self.source.faces, color, aux, self.source.eye_faces)
        self._bg = self.ctx.program(vertex_shader=_BG_VERTEX, fragment_shader=_BG_FRAGMENT)
        self._bg["u_top"].value = self.palette.bg_top
        self._bg["u_bottom"].value = self.palette.bg_bottom
        self._bg_vao = self._screen_pass(self._bg)
        camera, target, fovy = self.source.view
        self.mvp = _perspective(fovy, width / height, 0.5 * camera[2], 1.6 * camera[2]) @ \
            _look_at(camera, target)
        self.mesh.set_uniforms(self.palette, self.mvp, camera)
        self.background = self._draw(None)  # (H, W, 3): what a pixel shows when no face covers it

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) mesh-frame points -> (N, 2) pixel (x, y), origin at the top left."""
        p = np.column_stack([np.asarray(points, float), np.ones(len(points))]) @ self.mvp.T
        ndc = p[:, :2] / p[:, 3:]
        return np.column_stack([(ndc[:, 0] + 1) * 0.5 * self.size[0],
                                (1 - ndc[:, 1]) * 0.5 * self.size[1]])

    def _make_targets(self, fxaa: bool) -> None:
        """Scene framebuffer (MSAA or not) -> image texture -> optional FXAA output."""
        ctx, size = self.ctx, self.size
        self._image = ctx.texture(size, 4)
        depth = ctx.depth_renderbuffer(size, samples=self.samples)
        if self.samples:
            color = ctx.renderbuffer(size, 4, samples=self.samples)
            self._scene = ctx.framebuffer(color_attachments=[color], depth_attachment=depth)
            self._resolve = ctx.framebuffer(color_attachments=[self._image])
        else:
            self._scene = ctx.framebuffer(color_attachments=[self._image], depth_attachment=depth)
        self._fxaa_vao = None
        self._out = self._resolve if self.samples else self._scene
        if fxaa:
            prog = ctx.program(vertex_shader=_BG_VERTEX, fragment_shader=_FXAA_FRAGMENT)
            prog["u_texel"].value = (1.0 / size[0], 1.0 / size[1])
            self._fxaa_vao = self._screen_pass(prog)
            self._out = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)])

    def _screen_pass(self, prog: Any) -> Any:
        quad = np.array([[-1, -1], [3, -1], [-1, 3]], "f4")  # one triangle covers the screen
        return self.ctx.vertex_array(prog, [(self.ctx.buffer(quad.tobytes()), "2f", "in_xy")])

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        """(C,) coefficients in rig order -> (H, W, 3) uint8. arkit52: 52 ARKit weights, then
        head pitch/yaw/roll (rad); flame56: 50 expressions, jaw and head rotation vectors."""
        coeffs = np.asarray(coeffs, np.float32)
        n = self.source.n_coeffs
        if coeffs.shape != (n,):
            raise ValueError(f"expected coefficients of shape ({n},), got {coeffs.shape}; map "
                             "other layouts with rigs.to_rig_order")
        if not np.all(np.isfinite(coeffs)):
            raise ValueError("coefficients contain NaN or inf")
        return self._draw(self.source.pose(coeffs))

    def frames(self, coeffs: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Lazily render a (T, 55) sequence, one frame at a time (for video writing)."""
        for row in coeffs:
            yield self.render(row)

    def _draw(self, verts: np.ndarray | None) -> np.ndarray:
        with self.ctx:  # make this context current: two renderers may share a thread
            return self._draw_current(verts)

    def _draw_current(self, verts: np.ndarray | None) -> np.ndarray:
        self._scene.use()
        self._scene.clear(0.0, 0.0, 0.0, 1.0)
        self.ctx.enable_only(self.ctx.DEPTH_TEST | self.ctx.CULL_FACE)
        if verts is not None:
            self.mesh.upload(verts)
            self.mesh.render()
        self._bg_vao.render()  # last, so the depth test skips the pixels the head covers
        if self.samples:
            self.ctx.copy_framebuffer(self._resolve, self._scene)
        if self._fxaa_vao is not None:
            self._out.use()
            self.ctx.enable_only(0)
            self._image.use(0)
            self._fxaa_vao.render()
        raw = self._out.read(components=3, alignment=1)
        width, height = self.size
        return np.frombuffer(raw, np.uint8).reshape(height, width, 3)[::-1].copy()

    def close(self) -> None:
        """Free the GL context (also done by the garbage collector)."""
        self.ctx.release()

    def __enter__(self) -> "FaceRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_source(rig: str, flame_model: str | None) -> Any:
    if rig == "arkit52":
        return av.build_avatar()
    if rig == "flame56":
        # optional: needs the user's FLAME files
        from dualtalk_core.render.flame_renderer import FlameModel
        if flame_model is None:
            raise ValueError("rig 'flame56' needs flame_model=<path to a FLAME .npz>")
        return FlameModel.load(flame_model)
    raise ValueError(f"unknown rig {rig!r}; expected 'arkit52' or 'flame56'")
