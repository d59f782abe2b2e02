"""`dualtalk-eval` end to end: metrics.json, table.md, per_clip.jsonl and plots from a model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dualtalk_core.evaluation import eval_cli
from dualtalk_core.model import DualTalkModel
from scoring_corpus import write_scoring_corpus  # test/core helper


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scoring_corpus(tmp_path_factory.mktemp("corpus"))


def test_cli_end_to_end_with_the_lite_model(corpus: Path, tmp_path: Path) -> None:
    model_dir = DualTalkModel.from_preset("lite", device="cpu").save(tmp_path / "m")
    out = tmp_path / "eval"
    rc = eval_cli.main(["--data", str(corpus), "--model", str(model_dir), "--out", str(out),
                        "--baselines", "--max-clips", "1", "--device", "cpu", "--plots", "1"])
    assert rc == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["n_clips"] == 1 and summary["n_directions"] == 2
    exp = summary["methods"]["dualtalk"]["groups"]["EXP"]
    assert all(np.isfinite(exp[m]) for m in ("FD", "P-FD", "MSE", "SID", "Var"))
    assert "| DualTalk |" in (out / "table.md").read_text()
    assert "Ahead of every baseline on FD and MSE: **" in (out / "table.md").read_text()
    assert "| FD EXP offset x1 | FD EXP spread x1 |" in (out / "table.md").read_text()
    assert 0.0 <= exp["FD-offset"] <= exp["FD"]
    alive = summary["aliveness"]
    assert set(alive["model"]) == set(alive["gt"]) == {"speaking", "listening", "silence"}
    assert sum(role["minutes"] for role in alive["gt"].values()) > 0
    assert all(alive["model"][r]["minutes"] == alive["gt"][r]["minutes"] for r in alive["gt"])
    assert "Alive at rest: model | ground truth |" in (out / "table.md").read_text()
    voice = summary["voice_alone"]
    assert voice["n"] == 0 or (voice["mean"] >= 0 and isinstance(voice["clear"], bool))
    assert len(summary["verdict"]["cells"]) == 4 * 2 * 3  # 4 baselines, FD/MSE, 3 groups
    assert (out / "plots" / "clip00_speaker1.png").stat().st_size > 1000
    assert len((out / "per_clip.jsonl").read_text().splitlines()) == 2 * 5
    assert eval_cli.main(["--data", str(corpus), "--model", str(model_dir), "--out", str(out),
                          "--split", "nope", "--device", "cpu"]) == 2


def test_cli_reports_a_missing_model(corpus: Path, tmp_path: Path) -> None:
    assert eval_cli.main(["--data", str(corpus), "--model", str(tmp_path / "none"),
                          "--out", str(tmp_path / "o")]) == 2
