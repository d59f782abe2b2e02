"""The README's performance table is the newest benchmark results file, at the node's defaults."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench import report
from bench.designs import DESIGNS, design_stream

ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_the_newest_results():
    path = report.latest_results()
    results = json.loads(path.read_text())
    assert report.readme_section(results, path.name) in (ROOT / "README.md").read_text(), (
        "README's performance table is stale: paste `python -m bench.report` into it")


def test_the_newest_results_were_measured_at_the_node_defaults():
    results = json.loads(report.latest_results().read_text())
    assert results["config"] == report.measured_config()
    node_stream = dataclasses.asdict(report.NODE.stream)
    engine = results["core"]["designs"]
    assert set(engine) == set(DESIGNS)
    # windowed: the node's StreamConfig itself; incremental: the same at hop 40 ms
    assert engine["windowed"]["stream"] == node_stream
    assert engine["windowed"]["stepper"] == "WindowedStepper"
    assert engine["incremental"]["stream"] == dataclasses.asdict(design_stream("incremental"))
    assert engine["incremental"]["stepper"] == "IncrementalStepper"
    assert {k: v for k, v in engine["incremental"]["stream"].items() if k != "hop_ms"} == {
        k: v for k, v in node_stream.items() if k != "hop_ms"}
    assert all(d["torch_threads"] == report.NODE.torch_threads for d in engine.values())
    # the node ran with no parameter but the incremental design's model folder
    runs = {r["design"]: r for r in results["node"]["runs"]}
    assert set(runs) == set(DESIGNS)
    assert runs["windowed"]["params"] == []
    assert [p.split(":=")[0] for p in runs["incremental"]["params"][1::2]] == ["model"]
