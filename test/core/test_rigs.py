"""Rigs: layouts, groups, name mapping from other tools' spellings, head rotation."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core import rigs
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, get_rig, map_names, to_rig_order


def test_layouts_and_groups():
    arkit, flame = get_rig("arkit52"), get_rig("flame56")
    assert arkit.dim == 55 and flame.dim == 56
    assert len(arkit.group_index("EXP")) == 48 and len(arkit.group_index("JAW")) == 4
    pose = [arkit.names[i] for i in arkit.group_index("POSE")]
    assert pose == ["headPitch", "headYaw", "headRoll"]
    assert list(flame.group_index("JAW")) == [50, 51, 52]
    with pytest.raises(ValueError, match="unknown group"):
        arkit.group_index("MOUTH")
    with pytest.raises(ValueError, match="arkit52"):
        get_rig("nope")


def test_audio2face_pascal_case_maps_fully():
    names = [n[0].upper() + n[1:] for n in get_rig("arkit52").names]  # EyeBlinkLeft, HeadYaw
    values = np.arange(55, dtype=np.float32)
    out, cmap = to_rig_order("arkit52", names, values)
    np.testing.assert_array_equal(out, values)
    assert cmap.missing == () and cmap.unknown == ()


def test_side_suffixes_and_separators():
    cmap = map_names("arkit52", ("eyeBlink_L", "eyeBlink_R", "mouth_smile-l", "Jaw Open"))
    rig = get_rig("arkit52")
    got = {rig.names[i] for i in np.flatnonzero(cmap.source >= 0)}
    assert got == {"eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "jawOpen"}
    assert cmap.unknown == ()


def test_mediapipe_names_neutral_ignored_missing_reported():
    # MediaPipe's face blendshapes: `_neutral` + the ARKit names without tongueOut, no head pose.
    names = ["_neutral"] + [n for n in ARKIT_BLENDSHAPES if n != "tongueOut"]
    values = np.linspace(0, 1, len(names), dtype=np.float32)
    out, cmap = to_rig_order("arkit52", names, values)
    assert cmap.ignored == ("_neutral",) and cmap.unknown == ()
    assert cmap.missing == ("tongueOut", "headPitch", "headYaw", "headRoll")
    rig = get_rig("arkit52")
    assert out[rig.names.index("eyeBlinkLeft")] == values[1]
    assert out[rig.names.index("tongueOut")] == 0.0  # neutral


def test_unknown_and_duplicate_names_reported():
    cmap = map_names("arkit52", ("jawOpen", "JawOpen", "smirk"))
    assert cmap.unknown == ("smirk",) and cmap.duplicates == ("JawOpen",)


def test_flame_message_spellings():
    names = [f"exp{i}" for i in range(50)] + ["jaw0", "jaw1", "jaw2", "pose0", "pose1", "pose2"]
    values = np.arange(56, dtype=np.float32)
    out, cmap = to_rig_order("flame56", names, values)
    assert cmap.missing == ()
    np.testing.assert_array_equal(out, values)


def test_batch_values_and_shape_errors():
    names = ["jawOpen", "headYaw"]
    out, _ = to_rig_order("arkit52", names, np.ones((7, 2), np.float32))
    assert out.shape == (7, 55)
    with pytest.raises(ValueError, match="shape"):
        to_rig_order("arkit52", names, np.ones(3, np.float32))


def test_head_quaternion_axes():
    rig = get_rig("arkit52")
    values = np.zeros(55, np.float32)
    np.testing.assert_allclose(rig.head_quaternion(values), [0, 0, 0, 1], atol=1e-7)
    values[rig.names.index("headYaw")] = np.pi / 2  # turn to its left: about +z
    np.testing.assert_allclose(rig.head_quaternion(values),
                               [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)], atol=1e-6)
    flame = get_rig("flame56")
    assert flame.head_quaternion(np.zeros((3, 56))).shape == (3, 4)
    assert rigs.canonical_name("eyeBlink_L") == "eyeblinkleft"
