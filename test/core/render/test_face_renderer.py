"""Pixel tests of the EGL face renderer: each channel changes its own region and nothing else."""
import logging
import time

import numpy as np
import pytest

from dualtalk_core.render import face_renderer
from dualtalk_core.render.avatar_mesh import EYE_R, MOUTH_LAT, eye_center, skin_point
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE

from arkit_values import coeffs  # test/core helper

NAMES = ARKIT_BLENDSHAPES + HEAD_POSE
LOG = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def egl():
    """Fail (the message names the Debian packages) where EGL cannot render: `make setup`
    installs them, so a machine without them is a set-up error, not a reason to skip."""
    try:
        face_renderer.create_context().release()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def renderer(egl):
    r = face_renderer.FaceRenderer(512, 512, "robot")
    yield r
    r.close()


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 8


def box(r, center: np.ndarray, half: float) -> tuple[slice, slice]:
    """Pixel box around a mesh-frame point, `half` mesh units each way."""
    (x, y), (x2, _) = r.project(np.array([center, center + [half, 0.0, 0.0]]))
    h = int(np.ceil(x2 - x))
    return slice(int(y) - h, int(y) + h), slice(int(x) - h, int(x) + h)


def test_neutral_frame_is_deterministic(renderer):
    a, b = renderer.render(coeffs()), renderer.render(coeffs())
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    with face_renderer.FaceRenderer(512, 512, "robot") as other:
        assert np.array_equal(other.render(coeffs()), a)


def test_jaw_open_changes_the_mouth_not_the_top_of_the_face(renderer):
    neutral, opened = renderer.render(coeffs()), renderer.render(coeffs(jawOpen=1.0))
    diff = changed(neutral, opened)
    assert diff[box(renderer, skin_point(0.0, MOUTH_LAT), 0.15)].mean() > 0.2
    eye_bottom = renderer.project(eye_center(1.0)[None] - [0.0, 1.3 * EYE_R, 0.0])[0, 1]
    assert not diff[: int(eye_bottom)].any(), "jawOpen changed pixels at or above the eyes"


@pytest.mark.parametrize("side, name", [(1.0, "eyeBlinkLeft"), (-1.0, "eyeBlinkRight")])
def test_blink_changes_its_eye_only(renderer, side, name):
    diff = changed(renderer.render(coeffs()), renderer.render(coeffs(**{name: 1.0})))
    assert diff[box(renderer, eye_center(side), EYE_R)].mean() > 0.2
    assert not diff[box(renderer, eye_center(-side), EYE_R)].any()
    assert not diff[box(renderer, skin_point(0.0, MOUTH_LAT), 0.2)].any()


def test_left_is_the_viewers_right(renderer):
    """ARKit Left = the subject's left, which faces the camera on the image's right half."""
    diff = changed(renderer.render(coeffs()), renderer.render(coeffs(eyeBlinkLeft=1.0)))
    cols = np.flatnonzero(diff.any(axis=0))
    assert cols.min() > 256


def test_brow_inner_up_changes_the_brows(renderer):
    diff = changed(renderer.render(coeffs()), renderer.render(coeffs(browInnerUp=1.0)))
    brow = renderer.source.rest[renderer.source.ranges["browL"]].mean(0)
    assert diff[box(renderer, brow, 0.15)].mean() > 0.05
    assert not diff[box(renderer, skin_point(0.0, MOUTH_LAT), 0.2)].any()


def test_head_yaw_changes_the_silhouette(renderer):
    def mask(frame: np.ndarray) -> np.ndarray:
        return changed(frame, renderer.background)
    front, turned = mask(renderer.render(coeffs())), mask(renderer.render(coeffs(headYaw=0.5)))
    assert 0.15 < front.mean() < 0.8
    assert (front ^ turned).mean() > 0.01


def test_sequence_of_25_frames(renderer):
    t = np.arange(25) / 25.0
    seq = np.zeros((25, len(NAMES)), np.float32)
    seq[:, NAMES.index("jawOpen")] = 0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)
    seq[:, NAMES.index("headYaw")] = 0.2 * np.sin(2 * np.pi * t)
    start = time.perf_counter()
    frames = list(renderer.frames(seq))
    per_frame_ms = (time.perf_counter() - start) / 25 * 1000
    LOG.info("rendered 25 frames of 512x512 at %.1f ms per frame", per_frame_ms)
    assert len(frames) == 25 and all(f.shape == (512, 512, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[6])


def test_two_renderers_share_a_thread(egl):
    """Each draw makes its own context current: the robot and the partner interleave."""
    with face_renderer.FaceRenderer(128, 128, "robot") as robot, \
            face_renderer.FaceRenderer(128, 128, "partner") as partner:
        a, b, a2 = robot.render(coeffs()), partner.render(coeffs()), robot.render(coeffs())
    assert np.array_equal(a, a2) and not np.array_equal(a, b)


def test_bad_arguments_raise(renderer):
    with pytest.raises(ValueError, match="shape"):
        renderer.render(np.zeros(52))
    with pytest.raises(ValueError, match="NaN"):
        renderer.render(np.full(55, np.nan))
    with pytest.raises(ValueError, match="style"):
        face_renderer.FaceRenderer(64, 64, "zombie")
    with pytest.raises(ValueError, match="rig"):
        face_renderer.FaceRenderer(64, 64, rig="smpl")


def test_missing_egl_names_the_debian_packages(monkeypatch):
    import moderngl

    def fail(**kwargs):
        raise Exception("eglGetDisplay failed")
    monkeypatch.setattr(moderngl, "create_standalone_context", fail)
    with pytest.raises(RuntimeError, match="libegl1.*libgl1-mesa-dri"):
        face_renderer.create_context()


def fake_flame(path, n_rows: int = 20, n_cols: int = 24) -> None:
    """A FLAME-shaped .npz (an egg of 480 vertices): the real model is a licensed download."""
    from dualtalk_core.render.avatar_mesh import _grid_faces, _sphere
    unit = _sphere(n_rows, n_cols)
    v = unit * [0.08, 0.11, 0.09]
    faces = _grid_faces(n_rows, n_cols, True)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    n = len(v)
    shapedirs = np.zeros((n, 3, 400))
    shapedirs[:, :, 300] = 0.02 * unit  # exp0 inflates the egg
    weights = np.zeros((n, 5))
    weights[:, 0], weights[v[:, 1] < -0.04, 0], weights[v[:, 1] < -0.04, 2] = 1.0, 0.0, 1.0
    np.savez(path, v_template=v, f=faces, shapedirs=shapedirs, posedirs=np.zeros((n, 3, 36)),
             J_regressor=np.full((5, n), 1.0 / n), weights=weights,
             kintree_table=np.array([[2 ** 32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]))


def test_flame_rig_renders_the_users_model(egl, tmp_path):
    fake_flame(tmp_path / "flame.npz")
    with face_renderer.FaceRenderer(128, 128, "partner", rig="flame56",
                                    flame_model=str(tmp_path / "flame.npz")) as r:
        c = np.zeros(56, np.float32)
        neutral = r.render(c)
        c[50] = 0.5  # jaw rotation about x: only the lower part moves
        diff = changed(neutral, r.render(c))
        c[:] = 0.0
        c[0] = 1.0
        assert changed(neutral, r.render(c)).any()
        with pytest.raises(ValueError, match="56"):
            r.render(np.zeros(55))
    assert diff.any() and not diff[:40].any()


def test_flame_files_are_checked_and_never_unpickled(tmp_path):
    from dualtalk_core.render.flame_renderer import FlameModel
    with pytest.raises(FileNotFoundError, match="flame.is.tue.mpg.de"):
        FlameModel.load(tmp_path / "missing.npz")
    (tmp_path / "generic_model.pkl").write_bytes(b"not read")
    with pytest.raises(ValueError, match="pickles are not loaded"):
        FlameModel.load(tmp_path / "generic_model.pkl")
    np.savez(tmp_path / "partial.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="missing arrays"):
        FlameModel.load(tmp_path / "partial.npz")
    fake_flame(tmp_path / "objects.npz")
    arrays = dict(np.load(tmp_path / "objects.npz"))
    np.savez(tmp_path / "objects.npz", **{**arrays, "f": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        FlameModel.load(tmp_path / "objects.npz")
    with pytest.raises(ValueError, match="flame_model"):
        face_renderer.FaceRenderer(64, 64, rig="flame56")
