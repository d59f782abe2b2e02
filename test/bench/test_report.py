"""The README's performance table is the newest benchmark results file, at the node's defaults."""
from __future__ import annotations

import json
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_the_newest_results():
    path = report.latest_results()
    results = json.loads(path.read_text())
    assert report.readme_section(results, path.name) in (ROOT / "README.md").read_text(), (
        "README's performance table is stale: paste `python -m bench.report` into it")


def test_the_newest_results_were_measured_at_the_node_defaults():
    results = json.loads(report.latest_results().read_text())
    assert results["config"] == report.measured_config()
    row = next(r for r in results["core"]["rows"] if r["preset"] == "lite"
               and r["threads"] == report.NODE.torch_threads
               and r["window_s"] == report.DEFAULT_WINDOW_S)
    assert row["engine"]["hop_ms"] == report.DEFAULT_HOP_MS
    assert any(run["hop_ms"] == report.DEFAULT_HOP_MS for run in results["node"]["runs"])
