"""Roles frame by frame equal the whole clip's, however the audio arrives."""
from __future__ import annotations

import numpy as np

from dualtalk_core.audio import voice_activity as va
from dualtalk_core.units import SAMPLES_PER_FRAME


def test_streaming_roles_equal_whole_clip_roles():
    rng = np.random.default_rng(0)
    frames = 500
    active = np.repeat(rng.random((2, frames // 25)) < 0.4, 25, axis=1)  # 1 s turns
    active &= rng.random((2, frames)) < 0.8  # with short gaps between words
    gain = np.where(np.repeat(active, SAMPLES_PER_FRAME, axis=1), 0.1, 1e-4)
    own, other = gain * rng.standard_normal(gain.shape)
    whole = va.roles(own, other, frames)
    stream = va.VoiceActivity()
    cuts = [0, 1, 9, 10, 200, 499, 500]
    pieces = [stream.roles(own[a * 640:b * 640], other[a * 640:b * 640])
              for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    assert set(np.unique(whole)) == {va.SPEAKING, va.LISTENING, va.SILENCE}
