"""Resting faces: one per identity and corpus seed, realistic ranges, small session shifts."""
from __future__ import annotations

import numpy as np

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth.persona import PersonaConfig, resting_face, session_face

NAMES = get_rig("arkit52").names


def test_an_identity_keeps_its_face_and_people_differ() -> None:
    a = resting_face("en-us+m1", 0)
    np.testing.assert_array_equal(a, resting_face("en-us+m1", 0))
    others = [resting_face(name, 0) for name in ("en-us+m2", "en+m1", "en-029+f5")]
    assert all(np.abs(a - o).max() > 0.02 for o in others)
    assert np.abs(a - resting_face("en-us+m1", 1)).max() > 0.02  # another corpus, other people


def test_ranges_over_many_people() -> None:
    faces = np.stack([resting_face(f"voice+{i}", 3) for i in range(400)])
    blend, head = faces[:, :52], faces[:, 52:]
    assert blend.min() > -0.1 and blend.max() < 0.4
    assert (blend > 0.02).sum(axis=1).min() >= 15  # nobody rests at an all-zero face
    np.testing.assert_allclose(head.std(axis=0), PersonaConfig().head_std_rad, rtol=0.2)
    squint = blend[:, NAMES.index("eyeSquintLeft")] - blend[:, NAMES.index("eyeSquintRight")]
    assert 0.01 < squint.std() < 0.05  # a little asymmetry, not a different face per side


def test_session_shift_is_small_and_blendshapes_stay_valid() -> None:
    cfg = PersonaConfig()
    rest = resting_face("en+f2", 0)
    sessions = np.stack([session_face("en+f2", 0, np.random.default_rng(i)) for i in range(200)])
    assert sessions[:, :52].min() >= 0.0 and sessions[:, :52].max() <= 1.0
    shift = sessions - rest
    assert np.abs(shift[:, 52:]).max() < 5 * cfg.session_head_std_rad
    assert np.abs(np.median(shift[:, 52:], axis=0)).max() < cfg.session_head_std_rad / 3
