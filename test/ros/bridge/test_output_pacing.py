"""The output delay follows the measured frame latency: derived at start, raised at once when
frames would be late, lowered slowly; late frames count only after start-up."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_ros.bridge.node_settings import OutputSettings
from dualtalk_ros.bridge.output_pacing import (ASSUMED_CHUNK_MS, ASSUMED_COMPUTE_MS, GUARD_MS,
                                               LOWER_MS_PER_S, OutputPacer)


def test_a_derived_delay_starts_from_the_lookahead_chunk_run_and_wait():
    pacer = OutputPacer(OutputSettings(), lookahead_ms=200.0, batch_wait_ms=40.0)
    assert pacer.derived and pacer.delay_ms == 305.0  # 200 + 32 + 20 + 40 + 10, rounded to 5
    assert 200.0 + ASSUMED_CHUNK_MS + ASSUMED_COMPUTE_MS + 10.0 <= pacer.delay_ms
    incremental = OutputPacer(OutputSettings(), 120.0, 0.0, incremental=True)
    assert incremental.delay_ms == 165.0  # 120 + 32 + 2 + 0 + 10, rounded up to 5
    report = pacer.recheck(0.0)
    assert report.required_ms is None and not report.started


def test_the_delay_rises_at_once_and_falls_2_ms_a_second():
    pacer = OutputPacer(OutputSettings(delay_margin_ms=10.0), lookahead_ms=120.0,
                        batch_wait_ms=0.0)
    start = pacer.delay_ms
    pacer.observe(10.0, [10.0 - 0.180] * 99 + [10.0 - 0.300])  # one slow frame in a hundred
    report = pacer.recheck(10.0)
    assert report.latency_p50_ms == pytest.approx(180.0)
    assert report.required_ms == pytest.approx(report.latency_p99_ms + 10.0)
    assert pacer.delay_ms > start and pacer.delay_ms % 5 == 0 and report.started
    raised = pacer.delay_ms
    pacer.observe(20.0, [20.0 - 0.05] * 300)  # fast from now on
    times = 10.5 + 0.5 * np.arange(200)  # re-checks twice a second (diagnostics.period_s 0.5)
    falling = np.array([pacer.recheck(t).delay_ms for t in times])
    assert falling[0] == raised  # a just-raised delay is held
    steps = np.flatnonzero(np.diff(falling))
    assert np.all(np.diff(falling)[steps] == -5.0) and np.all(np.diff(times[steps]) >= 2.5)
    assert falling[-1] == 60.0  # 50 ms latency + 10 ms margin
    seconds = times[np.argmax(falling == 60.0)] - 10.0
    assert seconds == pytest.approx((raised - 60.0) / LOWER_MS_PER_S, abs=3.0)


def test_a_fixed_delay_is_kept_and_a_live_change_applies():
    pacer = OutputPacer(OutputSettings(delay_ms=300.0), lookahead_ms=200.0,
                        batch_wait_ms=40.0)
    pacer.observe(5.0, [5.0 - 0.5] * 50)
    assert pacer.recheck(5.0).delay_ms == 300.0 and not pacer.derived
    pacer.configure(OutputSettings(delay_ms=250.0))
    assert pacer.delay_ms == 250.0
    assert pacer.due(10.0, 10.25) and not pacer.due(10.0, 10.2499)
    assert pacer.late(10.0, 10.271) and not pacer.late(10.0, 10.269)


def test_a_derived_delay_is_each_frames_deadline_and_covers_the_inputs_lateness():
    """Frames may wait for missing audio only as long as they can still be computed by their
    slot; a source whose chunks arrive later than that raises the delay instead of losing
    its audio to the deadline, up to what the caller caps the lateness at."""
    pacer = OutputPacer(OutputSettings(delay_margin_ms=10.0), lookahead_ms=200.0,
                        batch_wait_ms=40.0)
    assert pacer.delay_ms == 305.0
    assert pacer.wait_cap_ms == pytest.approx(305.0 - 200.0 - 40.0 - 20.0 - GUARD_MS)
    for _ in range(100):
        pacer.observe_compute(0.012)
    pacer.observe(10.0, [10.0 - 0.26] * 50)  # frames ready 260 ms after their stamps
    report = pacer.recheck(10.0, lateness_ms=100.0)  # 100 ms chunks
    assert report.required_ms == pytest.approx(200.0 + 100.0 + 40.0 + 12.0 + 10.0)
    assert pacer.delay_ms == 365.0 and report.arrival_lateness_ms == 100.0
    assert report.wait_cap_ms == pacer.wait_cap_ms >= 100.0  # a 100 ms chunk now fits
    fixed = OutputPacer(OutputSettings(delay_ms=300.0), 200.0, 40.0)
    assert fixed.wait_cap_ms is None  # a fixed delay: frames wait input_timeout_ms
