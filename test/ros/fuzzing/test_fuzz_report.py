"""The fuzzer's figures from receive times: rate bins, jitter, stalls, and the verdict line."""
from __future__ import annotations

import re

import numpy as np

from dualtalk_ros.fuzzing.fuzz_report import (Accounting, Window, build_report, face_rate,
                                              jitter_p99_ms, merged, silences, worst_gaps)

LINE = re.compile(r"fuzz: (\d+) messages, (\d+) crashes, min rate (\d+\.\d) fps, jitter p99 "
                  r"(\d+\.\d|inf) ms, rss growth (-?\d+\.\d) MiB, nan (\d+), counters (ok|bad)")


def steady(start: float, end: float) -> np.ndarray:
    return np.arange(start, end, 0.04)


def test_rate_bins_and_jitter_of_a_steady_stream_with_one_hole() -> None:
    times = steady(100.0, 110.0)
    holed = times[(times < 104.2) | (times >= 104.6)]  # 10 frames missing in second 4
    assert face_rate(holed, 100.0, 110.0) == [25, 25, 25, 25, 15, 25, 25, 25, 25, 25]
    assert jitter_p99_ms(times, 100.0, 110.0) < 1e-6
    # one 440 ms gap in 240 gaps: above the 99th percentile's reach, but the max is 400 ms
    assert 0.0 < jitter_p99_ms(holed, 100.0, 110.0) < 400.0


def test_silences_count_the_edges_and_merge() -> None:
    times = np.concatenate([steady(100.0, 103.0), steady(106.0, 108.0)])
    assert silences(times, 100.0, 111.0) == [[np.float64(times[74]), 106.0],
                                             [np.float64(times[-1]), 111.0]]
    assert merged([[1.0, 3.0], [2.0, 5.0], [7.0, 9.0]]) == [[1.0, 5.0], [7.0, 9.0]]


def test_report_line_matches_its_figures() -> None:
    sent = Accounting()
    for i in range(12_000):
        sent.add("partner_face", "valid" if i % 2 else "face_nan", None if i % 2 else "x")
    for i in range(500):  # the warm-up's messages are accounted, but not in N
        sent.add("partner_face", "valid", None, warmup=True)
    record = {"faces": [[t, t] for t in steady(100.0, 162.0)],
              "diagnostics": [[t, 0] for t in np.arange(100.0, 163.0, 1.0)],
              "bad_faces": 0, "bad_poses": 1, "last_values": {}}
    window = Window(100.0, 160.0, 162.0, warmup_s=100.0)
    report = build_report(sent, record, window, (300.0, 310.3), False)
    m = LINE.fullmatch(report["line"])
    assert m is not None, report["line"]
    assert m.groups() == ("12000", "0", "25.0", "0.0", "10.3", "1", "bad")
    assert report["goals"] == {"messages": True, "crashes": True, "min_rate_fps": True,
                               "jitter_p99_ms": True, "rss_growth_mib": True, "nan": False,
                               "counters": False}
    assert report["sent_invalid"] == {"partner_face": 6000}


def test_worst_gaps_name_the_notable_events_before_them() -> None:
    times = steady(100.0, 110.0)
    holed = times[(times < 104.2) | (times >= 104.6)]
    notable = [(103.5, "face_200k_names"), (101.0, "huge_payload"), (104.7, "rate_767999")]
    gaps = worst_gaps(holed, Window(100.0, 110.0, 112.0, warmup_s=90.0), notable, n=2)
    assert gaps[0] == {"at_s": 4.16, "gap_ms": 440.0, "notable_before": ["face_200k_names"]}
    assert gaps[1]["gap_ms"] == 40.0
