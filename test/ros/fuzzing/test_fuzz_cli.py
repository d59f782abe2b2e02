"""`dualtalk-fuzz` end to end: a short run against the real node over DDS prints the verdict
line, and its own accounting adds up (every message sent is counted once, by input kind and by
kind of message; the line says what the JSON says). The figures themselves are the node's,
judged by `make bench`, not here."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from dualtalk_ros.fuzzing.counter_check import KINDS

LINE = re.compile(r"fuzz: (\d+) messages, (\d+) crashes, min rate (\d+\.\d) fps, jitter p99 "
                  r"(\d+\.\d|inf) ms, rss growth (-?\d+\.\d) MiB, nan (\d+), counters (ok|bad)")
SECONDS = 8
WARMUP_S = 3


@pytest.mark.slow
def test_short_run_prints_its_line_and_accounts_for_every_message(
        ros_domain: int, ros_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    proc = subprocess.run(["dualtalk-fuzz", "--seconds", str(SECONDS), "--seed", "3",
                           "--warmup-s", str(WARMUP_S),
                           "--domain", str(ros_domain), "--out", str(out)],
                          env=ros_env, capture_output=True, text=True, timeout=240)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = LINE.fullmatch(last)
    assert m is not None, last
    report = json.loads(out.read_text())
    assert report["line"] == last
    assert proc.returncode == (0 if all(report["goals"].values()) else 1)
    n, crashes, nan, counters = int(m[1]), int(m[2]), int(m[6]), m[7]
    assert (n, crashes, nan) == (report["messages"], report["crashes"], report["nan"])
    assert counters == ("ok" if report["counters_ok"] else "bad")
    # the run's own accounting
    total = sum(report["sent"].values())
    assert total == sum(report["sent_by_label"].values())
    assert n == total - report["warmup_messages"]
    assert report["warmup_messages"] >= 85 * WARMUP_S * 0.9  # valid only: none invalid
    assert n >= 150 * SECONDS  # ~92 valid + 100 bad a second
    assert report["sent_by_label"]["valid"] >= 85 * (SECONDS + WARMUP_S) * 0.9
    invalid = sum(report["sent_invalid"].values())
    assert invalid == sum(report["invalid_reasons"].values()) \
        == sum(report["invalid_by_label"].values()) > 0.3 * n
    for kind, count in report["sent_invalid"].items():
        assert count <= report["sent"][kind]
    for label, count in report["invalid_by_label"].items():
        assert count <= report["sent_by_label"][label]
    assert set(report["sent"]) <= set(KINDS)
    assert 0 <= report["holes"] <= report["gaps"]
    assert report["node_started"] and not report["node_exited"]
    assert report["node_stopped_cleanly"]
    assert len(report["rate_per_s"]) == SECONDS
    assert len(report["rss_mib_per_s"]) == SECONDS  # the warm-up's end, then each second
    assert report["faces_received"] > 0 and report["diagnostics_received"] > 0
    assert len(report["counter_checks"]) == 3 * len(KINDS) + 3 + 1


@pytest.mark.parametrize("args, problem", [
    (["--seconds", "0"], "--seconds must be within 1..3600"),
    (["--seconds", "fast"], "--seconds: invalid float value"),
    (["--out", "/nonexistent-dir/fuzz.json"], "folder /nonexistent-dir does not exist"),
    (["--warmup-s", "-1"], "--warmup-s must be within 0..600"),
])
def test_usage_errors_are_one_line_and_status_2(args: list[str], problem: str) -> None:
    proc = subprocess.run(["dualtalk-fuzz", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert problem in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.slow
def test_clean_baseline_sends_only_the_valid_conversation(
        ros_domain: int, ros_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "clean.json"
    proc = subprocess.run(["dualtalk-fuzz", "--clean", "--seconds", "3", "--warmup-s", "1",
                           "--domain", str(ros_domain), "--out", str(out)],
                          env=ros_env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]  # N < 10,000 by design
    report = json.loads(out.read_text())
    assert report["clean"] and report["sent_invalid"] == {}
    assert set(report["sent_by_label"]) == {"valid"}
    assert (report["gaps"], report["holes"], report["bursts"]) == (0, 0, 0)
    assert report["messages"] >= 85 * 3 * 0.9
