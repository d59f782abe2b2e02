"""The README's performance table is the newest benchmark results file, at the node's defaults."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench import report
from bench.designs import DESIGNS, WINDOWED, design_stream, node_params

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
    # incremental: the node's StreamConfig itself; windowed: the same, stepper windowed at 80 ms
    assert engine["incremental"]["stream"] == node_stream
    assert engine["incremental"]["stepper"] == "IncrementalStepper"
    assert engine["windowed"]["stream"] == dataclasses.asdict(design_stream("windowed"))
    assert engine["windowed"]["stepper"] == "WindowedStepper"
    assert {k: v for k, v in engine["windowed"]["stream"].items()
            if k not in WINDOWED} == {k: v for k, v in node_stream.items() if k not in WINDOWED}
    assert all(d["torch_threads"] == report.NODE.torch_threads for d in engine.values())
    # the node ran with no parameter but the windowed design's two
    runs = {r["design"]: r for r in results["node"]["runs"]}
    assert set(runs) == set(DESIGNS)
    assert runs["incremental"]["params"] == []
    assert runs["windowed"]["params"] == node_params("windowed")


def test_the_lookahead_curve_has_the_shipped_models_point_on_test_and_ood():
    results = json.loads(report.latest_results().read_text())
    curve = results["lookahead_curve"]["curve"]
    shipped = results["core"]["designs"]["incremental"]["lookahead_ms"]
    assert f"{shipped:g}" in curve["points"] and len(curve["points"]) >= 4
    for point in curve["points"].values():
        for split in ("test", "ood"):
            cell = point["cells"][f"{split}/JAW/FD"]
            assert cell["directions"] >= 100 and cell["ci"][0] <= cell["mean"] <= cell["ci"][1]
    assert "## Quality against lookahead" in report.markdown(results)
