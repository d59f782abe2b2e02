"""Joint maps: the example loads and is checked against the rig; every mistake fails in one line
naming the file and the key, with a suggestion where one is close."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dualtalk_core.retargeting import (HEAD_ANGLES, JointMap, JointSpec, MapError,
                                       load_joint_map, source_matrix)
from dualtalk_core.retargeting.joint_map import MAX_JOINTS
from dualtalk_core.rigs import get_rig

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "retarget" / "neck_jaw.yaml"
ARKIT = get_rig("arkit52").names


def _joint(**kw: Any) -> dict[str, Any]:
    return {"name": "jaw", "source": "jawOpen", "gain": 0.6, "min_rad": 0.0, "max_rad": 0.35,
            "max_velocity_rad_s": 4.0, "max_acceleration_rad_s2": 60.0, **kw}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def test_example_map_loads_against_the_engines_rig():
    joint_map = load_joint_map(EXAMPLE, ARKIT)
    assert joint_map.rig == "arkit52" and joint_map.max_gap_ms == 200.0
    assert joint_map.names[:4] == ("neck_yaw", "neck_pitch", "neck_roll", "jaw")
    neck_yaw = joint_map.joints[0]
    assert neck_yaw.source == (("head.yaw", 1.0),) and neck_yaw.channels == ()
    assert (neck_yaw.min_rad, neck_yaw.max_rad) == (-0.6, 0.6)
    assert (neck_yaw.max_velocity_rad_s, neck_yaw.max_acceleration_rad_s2) == (2.0, 10.0)
    jaw = joint_map.joints[3]
    assert jaw.channels == ("jawOpen",) and (jaw.min_rad, jaw.max_rad) == (0.0, 0.35)
    brow = joint_map.joints[-1]
    assert len(brow.source) == 5 and dict(brow.source)["browDownLeft"] == -0.25
    with pytest.raises(ValueError, match=r"neck_jaw.yaml: joints\[3\] \(jaw\).source.jawOpen: "
                                         r"not a channel"):
        load_joint_map(EXAMPLE, get_rig("flame56").names)  # the map is written for ARKit


def test_source_matrix_reads_channels_head_angles_and_weighted_sums():
    joint_map = load_joint_map(EXAMPLE)
    weights = source_matrix(joint_map, ARKIT)  # (J, C + 3)
    assert weights.shape == (len(joint_map.joints), len(ARKIT) + len(HEAD_ANGLES))
    assert weights[0, len(ARKIT) + HEAD_ANGLES.index("head.yaw")] == 1.0
    assert weights[3, ARKIT.index("jawOpen")] == 1.0 and weights[3].sum() == 1.0
    assert weights[-1, ARKIT.index("browInnerUp")] == 0.5 and weights[-1].sum() == 0.5
    # Other spellings of a channel (VRM, Live Link) name the same channel.
    spelled = JointMap((JointSpec("lid", "eyeBlink_L", 0.0, 1.0, 1.0, 1.0),))
    assert source_matrix(spelled, ARKIT)[0, ARKIT.index("eyeBlinkLeft")] == 1.0


def test_programmatic_spec_normalises_its_source_and_numbers():
    spec = JointSpec("brow", {"browInnerUp": 1, "head.pitch": -0.5},  # type: ignore[arg-type]
                     min_rad=-1, max_rad=1, max_velocity_rad_s=2, max_acceleration_rad_s2=3)
    assert spec.source == (("browInnerUp", 1.0), ("head.pitch", -0.5))
    assert isinstance(spec.min_rad, float) and spec.channels == ("browInnerUp",)
    with pytest.raises(MapError, match=r"joint 'brow': max_rad: must be >= min_rad \(1\)"):
        JointSpec("brow", (("browInnerUp", 1.0),), 1.0, 0.5, 2.0, 3.0)


_TOO_MANY = [_joint(name=f"j{i}") for i in range(MAX_JOINTS + 1)]
_CASES = [  # (document, substring the one-line error must contain)
    ({"joints": [_joint(max_velocity=2.0)]},
     r"joints[0] (jaw).max_velocity: unknown key (did you mean 'max_velocity_rad_s'?)"),
    ({"joints": [_joint(smoothing=50)]}, "(did you mean 'smoothing_ms'?)"),
    ({"joints": [_joint(min=0.0)]}, "joints[0] (jaw).min: unknown key (did you mean 'min_rad'?)"),
    ({"joint": [_joint()]}, "joint: unknown key (did you mean 'joints'?)"),
    ({"joints": [_joint(max_rad="0.3")]}, "joints[0] (jaw).max_rad: must be a number"),
    ({"joints": [_joint(gain=True)]}, "joints[0] (jaw).gain: must be a number"),
    ({"joints": [_joint(min_rad=0.4)]}, "joints[0] (jaw).max_rad: must be >= min_rad (0.4)"),
    ({"joints": [_joint(max_velocity_rad_s=0)]}, "(jaw).max_velocity_rad_s: must be > 0"),
    ({"joints": [_joint(max_acceleration_rad_s2=-5)]}, "max_acceleration_rad_s2: must be > 0"),
    ({"joints": [_joint(max_rad=float("nan"))]}, "(jaw).max_rad: must be a finite number"),
    ({"joints": [_joint(offset_rad=1e30)]}, "(jaw).offset_rad: must be in"),
    ({"joints": [_joint(smoothing_ms=-1)]}, "(jaw).smoothing_ms: must be in [0, 10000]"),
    ({"joints": [_joint(), _joint(source="jawOpn", name="j2")]},
     "joints[1] (j2).source.jawOpn: not a channel of the rig (55 channels) (did you mean "
     "'jawOpen'?)"),
    ({"joints": [_joint(source="head.yaww")]}, "(did you mean 'head.yaw'?)"),
    ({"joints": [_joint(source={"jawOpen": float("nan")})]}, "(jaw).source.jawOpen: must be a"),
    ({"joints": [_joint(source=[])]}, "(jaw).source: must be a channel name or a mapping"),
    ({"joints": [_joint(), _joint(gain=1.0)]}, "joints[1] (jaw).name: duplicate joint name"),
    ({"joints": [{k: v for k, v in _joint().items() if k != "max_rad"}]},
     "joints[0] (jaw).max_rad: missing (required)"),
    ({"joints": [_joint(name="my jaw")]}, "joints[0] (my jaw).name: must be a non-empty string"),
    ({"joints": _TOO_MANY}, f"joints: must be a list of 1 to {MAX_JOINTS} joints, got 65"),
    ({"joints": []}, "joints: must be a list of 1 to"),
    ({"joints": ["jaw"]}, "joints[0]: must be a mapping of joint fields"),
    ({"rig": "arkit", "joints": [_joint()]}, "rig: unknown rig 'arkit'"),
    ({"max_gap_ms": 0, "joints": [_joint()]}, "max_gap_ms: must be > 0"),
    ("", "(top level): the document is empty"),
    ("- jaw\n", "(top level): must be a mapping with a `joints:` list, got list"),
    ("joints:\n  - name: jaw\n    name: jaw2\n", "name: written twice (line 3)"),
    ("joints: [name: jaw", "while parsing"),
    ("joints:\n  - ? [a]\n    : 1\n", "found unhashable key"),
    ("# " + "x" * (1 << 20), "bytes; a joint map is at most 1048576"),
]


@pytest.mark.parametrize("document, expected", _CASES)
def test_map_errors_name_the_file_and_the_key_in_one_line(tmp_path, document, expected):
    if isinstance(document, dict):
        document = {"rig": "arkit52", **document}
    path = _write(tmp_path, document)
    with pytest.raises(ValueError) as info:
        load_joint_map(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert expected in message, message


def test_channels_are_checked_against_the_rig_given_at_load(tmp_path):
    path = _write(tmp_path, {"joints": [_joint(source="exp3")]})  # no `rig:` in the file
    assert load_joint_map(path).joints[0].channels == ("exp3",)
    assert load_joint_map(path, get_rig("flame56").names).names == ("jaw",)
    with pytest.raises(ValueError, match=r"joints\[0\] \(jaw\).source.exp3: not a channel"):
        load_joint_map(path, ARKIT)
    with pytest.raises(FileNotFoundError, match="joint map not found"):
        load_joint_map(tmp_path / "missing.yaml")


def test_head_only_map_fits_either_rig(tmp_path):
    path = _write(tmp_path, {"joints": [_joint(name="yaw", source="head.yaw", min_rad=-1.0)]})
    for rig in ("arkit52", "flame56"):
        names = get_rig(rig).names
        weights = source_matrix(load_joint_map(path, names), names)
        assert np.count_nonzero(weights) == 1 and weights[0, len(names)] == 1.0
