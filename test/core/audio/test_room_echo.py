"""The simulated room echo (`audio.room_echo`): delay, gain, decay and seed as configured; ERLE and
speech distortion measured as defined."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dualtalk_core.audio.room_echo import (RoomEcho, erle_db, impulse_response, simulate_echo,
                                           speech_distortion_db)


def test_the_impulse_response_has_the_configured_delay_gain_and_decay():
    room = RoomEcho(delay_ms=25.0, rt60_ms=400.0, gain_db=-6.0, direct_to_reverb_db=3.0)
    h = impulse_response(room)
    assert np.argmax(np.abs(h)) == 400 and h[400] == pytest.approx(10 ** (-6 / 20))
    assert not h[:400].any() and len(h) == 400 + 1 + 6400
    tail = h[401:]
    assert 10 * math.log10(h[400] ** 2 / np.sum(tail ** 2)) == pytest.approx(3.0)
    # 60 dB of energy decay over rt60: the last 100 ms hold ~1e-4.5 of the first 100 ms
    first, last = np.sum(tail[:1600] ** 2), np.sum(tail[-1600:] ** 2)
    assert 10 * math.log10(first / last) == pytest.approx(45.0, abs=3.0)


def test_the_echo_is_seeded_and_as_long_as_the_reference():
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    a = simulate_echo(x, RoomEcho(seed=1, noise_dbfs=-50.0, nonlinearity=1.0))
    assert a.shape == x.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, simulate_echo(x, RoomEcho(seed=1, noise_dbfs=-50.0,
                                                       nonlinearity=1.0)))
    assert not np.array_equal(a, simulate_echo(x, RoomEcho(seed=2, noise_dbfs=-50.0,
                                                           nonlinearity=1.0)))
    dry = simulate_echo(x, RoomEcho(rt60_ms=0.0, delay_ms=10.0, gain_db=0.0))
    assert np.allclose(dry[160:], x[:-160]) and np.abs(dry[:160]).max() < 1e-6


def test_erle_and_distortion_measure_what_they_say():
    x = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    assert erle_db(x, x / 10) == pytest.approx(20.0)
    assert erle_db(x, np.zeros_like(x)) == math.inf
    err, gain = speech_distortion_db(x, x * 0.5)
    assert gain == pytest.approx(-6.02, abs=0.01) and err == pytest.approx(6.02, abs=0.01)


@pytest.mark.parametrize("kwargs, match", [
    ({"delay_ms": -1.0}, r"RoomEcho.delay_ms must be a number in \[0, 1000\]"),
    ({"rt60_ms": float("nan")}, "RoomEcho.rt60_ms"),
    ({"gain_db": "loud"}, "RoomEcho.gain_db"),
    ({"noise_dbfs": 3.0}, "RoomEcho.noise_dbfs"),
])
def test_bad_rooms_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RoomEcho(**kwargs)


def test_bad_measurements_say_what_was_expected():
    x = np.ones(32000, np.float32)
    with pytest.raises(ValueError, match="one length"):
        erle_db(x, x[:-1])
    with pytest.raises(ValueError, match="leaves no samples"):
        erle_db(x, x, skip_s=2.0)
    with pytest.raises(ValueError, match="no echo after skip_s"):
        erle_db(np.zeros(48000), np.zeros(48000))
    with pytest.raises(ValueError, match=r"reference must be \(N,\) finite"):
        simulate_echo(np.full(10, np.nan), RoomEcho())
