"""The procedural head: every ARKit channel moves something, on the right side, and the head
turns by the rigs.py (REP-103) convention. No OpenGL needed."""
import numpy as np
import pytest

from dualtalk_core.render.avatar import (EYE, LID, SKIN, build_avatar, head_rotation)
from dualtalk_core.render.avatar_mesh import EYE_R, MOUTH_LAT, eye_center, skin_point
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE

from arkit_values import coeffs  # test/core helper

NAMES = ARKIT_BLENDSHAPES + HEAD_POSE


@pytest.fixture(scope="module")
def avatar():
    return build_avatar()


def test_shapes_and_types(avatar):
    v = avatar.n_vertices
    assert avatar.rest.shape == (v, 3) and avatar.rest.dtype == np.float32
    assert avatar.deltas.shape == (52, v, 3) and avatar.deltas.dtype == np.float32
    assert avatar.correctives.shape == (len(avatar.corrective_channels), v, 3)
    assert avatar.faces.min() >= 0 and avatar.faces.max() < v
    assert np.all(np.isfinite(avatar.deltas)) and np.all(np.isfinite(avatar.rest))
    assert 0 < avatar.n_head < v


def test_every_channel_moves_the_face(avatar):
    extent = np.linalg.norm(avatar.deltas, axis=2).max(axis=1)
    weak = [n for n, e in zip(ARKIT_BLENDSHAPES, extent) if e < 0.015]
    assert not weak, f"channels that barely move: {weak}"


def test_deform_is_linear_plus_arc_corrective(avatar):
    assert np.allclose(avatar.deform(np.zeros(52)), avatar.rest)
    w = np.random.default_rng(0).uniform(0, 1, 52).astype(np.float32)
    k = avatar.corrective_channels
    dense = (avatar.rest + np.tensordot(w, avatar.deltas, axes=1)
             + np.tensordot(w[k] - w[k] ** 2, avatar.correctives, axes=1))
    assert np.allclose(avatar.deform(w), dense, atol=1e-4)


def test_half_blink_lid_stays_outside_the_eyeball(avatar):
    """The quadratic corrective keeps a half-closed lid on its arc, not through the eye."""
    lid = avatar.ranges["lid_upL"]
    verts = avatar.deform(coeffs(eyeBlinkLeft=0.5)[:52])[lid]
    assert np.linalg.norm(verts - eye_center(1.0), axis=1).min() > 0.99 * EYE_R


@pytest.mark.parametrize("name", [n for n in ARKIT_BLENDSHAPES if n.endswith(("Left", "Right"))])
def test_sided_channels_move_their_own_side(avatar, name):
    """ARKit 'Left' is the subject's left: +x in the mesh frame (the viewer's right)."""
    moved = np.linalg.norm(avatar.deltas[ARKIT_BLENDSHAPES.index(name)], axis=1)
    x = avatar.rest[:, 0]
    centre = float((moved * x).sum() / moved.sum())
    if name.startswith("jaw") or name in ("mouthLeft", "mouthRight"):
        return  # these shift the whole jaw or mouth sideways, centred on the midline
    assert (centre > 0) == name.endswith("Left"), f"{name} moves x-centre {centre:.3f}"


def test_region_channels(avatar):
    """Blinks move lids only; jawOpen never moves the eyes, lids or brows."""
    blink = np.linalg.norm(avatar.deltas[ARKIT_BLENDSHAPES.index("eyeBlinkLeft")], axis=1) > 1e-6
    assert set(np.unique(avatar.region[blink])) == {LID}
    jaw = np.linalg.norm(avatar.deltas[ARKIT_BLENDSHAPES.index("jawOpen")], axis=1) > 0.01
    assert not np.any(np.isin(avatar.region[jaw], [EYE, LID]))
    mouth_y = skin_point(0.0, MOUTH_LAT)[1]
    assert avatar.rest[jaw & (avatar.region == SKIN), 1].max() < mouth_y + 0.25


def test_jaw_open_moves_the_chin_down(avatar):
    chin = np.argmin(np.linalg.norm(avatar.rest - skin_point(0.0, -0.85), axis=1))
    opened = avatar.pose(coeffs(jawOpen=1.0))
    assert opened[chin, 1] < avatar.rest[chin, 1] - 0.1


def test_mouth_close_is_capped_by_jaw_open(avatar):
    assert np.allclose(avatar.pose(coeffs(mouthClose=1.0)), avatar.rest)
    both = avatar.pose(coeffs(jawOpen=0.5, mouthClose=0.5))
    assert not np.allclose(both, avatar.pose(coeffs(jawOpen=0.5)))


def test_head_rotation_follows_rep103(avatar):
    """+yaw turns to its left (+x), +pitch puts the chin down, +roll tilts to its right (-x)."""
    nose = skin_point(0.0, -0.22)
    top = np.array([0.0, 1.0, 0.0])
    assert (head_rotation(coeffs(headYaw=0.3)) @ nose)[0] > 0.1
    assert (head_rotation(coeffs(headPitch=0.3)) @ nose)[1] < nose[1] - 0.1
    assert (head_rotation(coeffs(headRoll=0.3)) @ top)[0] < -0.1
    posed = avatar.pose(coeffs(headYaw=0.3))
    assert np.allclose(posed[avatar.n_head:], avatar.rest[avatar.n_head:])  # shoulders stay


def test_bad_input_raises(avatar):
    with pytest.raises(ValueError, match="55"):
        avatar.pose(np.zeros(52))
    with pytest.raises(ValueError, match="52"):
        avatar.deform(np.zeros(55))
