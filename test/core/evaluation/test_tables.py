"""Markdown tables: the Table 2 layout and scales, undefined values, the FD split, the verdict."""
from __future__ import annotations

from pathlib import Path

import pytest

from dualtalk_core.evaluation import scoring, tables
from dualtalk_core.evaluation.verdict import verdict
from scoring_corpus import MirrorModel, ZeroModel, verdict_results, write_scoring_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scoring_corpus(tmp_path_factory.mktemp("corpus"))


def test_table_has_the_paper_layout_and_every_method(corpus: Path) -> None:
    results = scoring.evaluate_model(MirrorModel(), corpus, "test", max_clips=1, progress=False)
    table = tables.format_table(results)
    assert "| FD JAW x1e3 |" in table and "| rPCC EXP x1e2 |" in table
    assert "| Mirror partner |" in table and "| GT |" in table
    fd_split = tables.format_fd_split(results)
    assert "| FD EXP offset x1 | FD EXP spread x1 |" in fd_split
    assert "| Nearest motion |" in fd_split


def test_undefined_values_show_as_a_dash_and_a_collapsed_sid_as_zero(corpus: Path) -> None:
    results = scoring.evaluate_model(ZeroModel(), corpus, "test", baselines=False, max_clips=1,
                                     progress=False)
    row = next(line for line in tables.format_table(results).splitlines() if "DualTalk" in line)
    assert " - " in row and "e-06" not in row  # undefined shown as "-", collapsed SID as 0
    assert tables.fmt_value(None, 1e3) == "-" and tables.fmt_value(-1.4e-6, 1.0) == "0"
    assert tables.fmt_value(0.0123456, 1e2) == "1.235"
    assert [tables.fmt_scale(s) for s in (1.0, 1e2, 1e3)] == ["x1", "x1e2", "x1e3"]


def test_verdict_markdown_marks_leads_within_noise() -> None:
    text = tables.format_verdict(verdict(verdict_results()))
    assert "| Mirror partner | ahead 3/3, clear |" in text
    assert "**behind** 2/3, within noise" in text
    assert "FD EXP: 2.333 -> 1.5 (x1), **not worse** (2/3, within noise)" in text
