"""Capture stamps follow the sample count: contiguous under late callbacks, a late first anchor
found out, sound-card drift followed, lost samples re-anchored. Synthetic measurements: the truth
is known, so every figure is checked against it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from dualtalk_ros.bridge.capture_clock import (DRIFT_DEAD_BAND_NS, MAX_LATE_NS, NS_PER_S,
                                               SLEW_LIMIT_NS, WINDOW_S,
                                               CaptureClock,
                                               bounded_measurement_ns)

RATE = 16000
FRAMES = 512
CHUNK_NS = FRAMES * NS_PER_S // RATE  # 32 ms
T0_NS = 1_000 * NS_PER_S
MAX_DELAY_NS = 40_000_000


@dataclass
class Run:
    truth: np.ndarray  # ns, when each buffer's first sample was captured
    stamps: np.ndarray  # ns, what the clock returned
    corrected: np.ndarray  # bool per buffer: the clock counted a correction on it
    reanchored: np.ndarray  # bool per buffer: the clock counted a re-anchor on it
    clock: CaptureClock

    def step_errors_samples(self) -> np.ndarray:
        """Each step minus one buffer's length, in whole samples (rounded)."""
        return np.round((np.diff(self.stamps) - CHUNK_NS) * RATE / NS_PER_S).astype(int)


def _truth(n: int, drift_ppm: float = 0.0, lost: dict[int, int] | None = None) -> np.ndarray:
    """Capture times of n buffers of a card `drift_ppm` fast; `lost` maps a buffer index to
    the number of buffers lost just before it."""
    index = np.arange(n, dtype=float)
    for at, count in (lost or {}).items():
        index[at:] += count
    return T0_NS + np.round(index * CHUNK_NS / (1.0 + drift_ppm * 1e-6)).astype(np.int64)


def _run(truth: np.ndarray, delays_ns: np.ndarray, overflow_at: int = -1) -> Run:
    clock = CaptureClock(RATE)
    stamps, corrected, reanchored = [], [], []
    for k, (true_ns, delay_ns) in enumerate(zip(truth, delays_ns)):
        before = (clock.corrections, clock.reanchors)
        stamps.append(clock.stamp(int(true_ns + delay_ns), FRAMES, overflow=k == overflow_at))
        corrected.append(clock.corrections > before[0])
        reanchored.append(clock.reanchors > before[1])
    return Run(truth, np.array(stamps), np.array(corrected), np.array(reanchored), clock)


def _loaded_delays(n: int, seed: int) -> np.ndarray:
    """Callbacks under load: usually a little late (exponential, 2 ms mean), one in ten up to
    40 ms late; never early."""
    rng = np.random.default_rng(seed)
    delays = rng.exponential(2e6, n)
    spikes = rng.random(n) < 0.1
    delays[spikes] = rng.uniform(0, MAX_DELAY_NS, spikes.sum())
    return np.minimum(delays, MAX_DELAY_NS).astype(np.int64)


def _buffers(seconds: float) -> int:
    return int(seconds * NS_PER_S / CHUNK_NS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stamps_are_contiguous_under_late_callbacks(seed):
    n = _buffers(180)
    run = _run(_truth(n), _loaded_delays(n, seed))
    steps = run.step_errors_samples()
    assert np.all(np.diff(run.stamps) > 0), "a stamp went back"
    assert run.clock.reanchors == 0
    # Every step is exactly one buffer long in samples, except where a correction is counted.
    assert np.all(steps[~run.corrected[1:]] == 0)
    assert np.all(steps[run.corrected[1:]] < 0)  # corrections only ever move earlier
    assert run.clock.corrections <= 3  # the first anchor's lateness, found out early on
    error = run.stamps - run.truth
    assert error.min() >= 0, "stamped before the capture (measurements are never early)"
    settled = _buffers(WINDOW_S)  # one reference window: a callback on time has been seen
    assert error[settled:].max() <= SLEW_LIMIT_NS


def test_the_raw_measurements_would_not_be_contiguous():
    """The same delays stamped as measured: the failure this clock exists for."""
    n = _buffers(30)
    measured = _truth(n) + _loaded_delays(n, 0)
    off = np.round((np.diff(measured) - CHUNK_NS) * RATE / NS_PER_S)
    assert np.mean(off != 0) > 0.5 and np.any(np.diff(measured) < 0)


def test_uniform_delays_up_to_40_ms_keep_stamps_increasing_and_counted():
    """The worst case: every callback anywhere up to 40 ms late. Steps off by a sample are
    counted corrections, and stamps never go back or run ahead of a measurement."""
    n = _buffers(120)
    delays = np.random.default_rng(3).uniform(0, MAX_DELAY_NS, n).astype(np.int64)
    run = _run(_truth(n), delays)
    steps = run.step_errors_samples()
    assert np.all(np.diff(run.stamps) > 0)
    assert run.clock.reanchors == 0
    assert np.all(steps[~run.corrected[1:]] == 0)
    assert np.all(run.stamps <= run.truth + delays + SLEW_LIMIT_NS)
    error = run.stamps - run.truth
    assert error.min() >= 0
    assert error[_buffers(WINDOW_S):].max() <= DRIFT_DEAD_BAND_NS + SLEW_LIMIT_NS


def test_a_late_first_anchor_moves_earlier_at_the_first_early_measurement():
    n = 50
    delays = np.zeros(n, dtype=np.int64)
    delays[:5] = 30_000_000  # the first five callbacks 30 ms late, then on time
    run = _run(_truth(n), delays)
    error = run.stamps - run.truth
    assert np.all(error[:5] == 30_000_000)  # contiguous from the late anchor
    assert np.all(error[5:] == 0)  # found out at once: a 2 ms step, still increasing
    assert np.all(np.diff(run.stamps) > 0)
    assert run.clock.corrections == 1 and run.clock.reanchors == 0
    assert np.all(run.step_errors_samples()[5:] == 0)


def test_a_start_up_backlog_is_found_out_by_the_end_of_its_burst():
    """PulseAudio's start delivered 64 buffers (2 s of audio written before the stream
    started) within 40 ms, all measured alike. Stamps stay increasing and below the arrival,
    and are right from the buffer after the burst."""
    n, burst = 200, 64
    truth = _truth(n)
    delays = np.zeros(n, dtype=np.int64)
    delays[:burst] = truth[burst - 1] - truth[:burst]  # measured when the last one arrived
    run = _run(truth, delays)
    error = run.stamps - run.truth
    arrival = truth + delays + CHUNK_NS
    assert np.all(np.diff(run.stamps) > 0) and np.all(run.stamps < arrival)
    assert error.min() >= 0
    assert np.all(error[burst:] == 0)
    assert run.clock.corrections == burst and run.clock.reanchors == 0


@pytest.mark.parametrize("drift_ppm", [50.0, -50.0])
def test_sound_card_drift_is_followed_without_re_anchoring(drift_ppm):
    n = _buffers(600)
    run = _run(_truth(n, drift_ppm), _loaded_delays(n, 4))
    error = run.stamps - run.truth
    assert run.clock.reanchors == 0
    settled = _buffers(WINDOW_S)
    # 50 ppm over 10 min is 30 ms: followed within the dead band and a slew of callback noise.
    assert np.abs(error[settled:]).max() <= DRIFT_DEAD_BAND_NS + SLEW_LIMIT_NS
    assert np.all(run.step_errors_samples()[~run.corrected[1:]] == 0)
    assert run.clock.corrections <= 3
    assert np.all(np.diff(run.stamps) > 0)


def test_an_overflow_re_anchors_once_at_the_measurement():
    n = 200
    truth = _truth(n, lost={100: 3})  # three buffers lost before buffer 100
    delays = np.full(n, 500_000, dtype=np.int64)
    run = _run(truth, delays, overflow_at=100)
    assert run.clock.reanchors == 1 and run.reanchored[100]
    assert run.stamps[100] == truth[100] + delays[100]
    assert np.all(run.step_errors_samples()[100:] == 0)
    assert np.all(np.diff(run.stamps) > 0)


def test_a_hole_longer_than_the_late_bound_re_anchors_once():
    n = 200
    lost = 200_000_000 // CHUNK_NS + 1  # 224 ms of buffers dropped, no overflow flag
    assert lost * CHUNK_NS > MAX_LATE_NS
    truth = _truth(n, lost={100: lost})
    run = _run(truth, np.zeros(n, dtype=np.int64))
    assert run.clock.reanchors == 1 and run.reanchored[100]
    assert np.array_equal(run.stamps, truth)


def test_a_clock_stepping_back_re_anchors_and_stamps_follow_it():
    n = 100
    truth = _truth(n)
    truth[60:] -= 5 * NS_PER_S  # a restarted bag under use_sim_time
    run = _run(truth, np.zeros(n, dtype=np.int64))
    assert run.clock.reanchors == 1 and run.reanchored[60]
    assert np.array_equal(run.stamps, truth)


def test_a_measurement_is_bounded_by_the_callbacks_own_timing():
    latency_ns = 64_000_000
    newest_ns = T0_NS - CHUNK_NS  # the buffer was complete when its callback began

    def measure(age_ns):
        return bounded_measurement_ns(T0_NS, age_ns, FRAMES, RATE, latency_ns)

    assert measure(50_000_000) == (T0_NS - 50_000_000, True)  # a plausible age is used as is
    assert measure(0) == (newest_ns, True)  # younger than the buffer itself: raised to it
    assert measure(CHUNK_NS + latency_ns) == (newest_ns - latency_ns, True)
    # Older than the buffer and the declared latency: the host's error (pulse under load
    # ramped to 1.7 s); taken as one buffer old, never early.
    assert measure(CHUNK_NS + latency_ns + 1) == (newest_ns, False)
    assert measure(1_700_000_000) == (newest_ns, False)
    assert measure(None) == (newest_ns - latency_ns, True)  # no ADC time: the host's promise


def test_a_stall_re_anchors_late_then_steps_back_without_going_back():
    """A 150 ms stall with every sample buffered (no overflow): one late measurement re-anchors
    (it looks like lost samples), then the next, honest one steps the timeline back."""
    n = 100
    delays = np.zeros(n, dtype=np.int64)
    delays[50] = 150_000_000
    run = _run(_truth(n), delays)
    assert run.clock.reanchors == 1 and run.reanchored[50]
    assert np.all(np.diff(run.stamps) > 0)
    assert np.array_equal(run.stamps[70:], run.truth[70:])


@pytest.mark.parametrize("rate, frames", [(0, 512), (16000.0, 512), (16000, 0)])
def test_bad_arguments_are_refused(rate, frames):
    with pytest.raises(ValueError):
        CaptureClock(rate).stamp(T0_NS, frames)
