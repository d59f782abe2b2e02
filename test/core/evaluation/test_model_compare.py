"""Two eval runs compared direction by direction: a clear gain reads better, a clear loss
worse, noise within noise; broken inputs are one-line errors with status 2."""
from __future__ import annotations

import json

import numpy as np

from dualtalk_core.evaluation import model_compare as mc
from dualtalk_core.evaluation.scoring import MODEL_KEY
from dualtalk_core.rigs import GROUPS


def _run(folder, values: dict[str, np.ndarray]) -> None:
    folder.mkdir()
    with open(folder / "per_clip.jsonl", "w") as f:
        for i in range(len(values["EXP"])):
            row = {"clip": f"c{i // 2}", "target": i % 2 + 1, "method": MODEL_KEY}
            for g in GROUPS:
                row[g] = {m: float(values[g][i]) for m in mc.METRICS}
            f.write(json.dumps(row) + "\n")
            f.write(json.dumps({**row, "method": "mirror"}) + "\n")  # other methods ignored


def test_readings_follow_the_paired_intervals(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.random(60) + 1.0
    _run(tmp_path / "old", {"EXP": base, "JAW": base, "POSE": base})
    _run(tmp_path / "new", {"EXP": base - 0.1, "JAW": base + 0.1,
                            "POSE": base + 0.01 * rng.standard_normal(60)})
    assert mc.main(["--new", str(tmp_path / "new"), "--old", str(tmp_path / "old"),
                    "--out", str(tmp_path / "t.md")]) == 0
    compared = mc.compare(mc.read_rows(tmp_path / "new"), mc.read_rows(tmp_path / "old"))
    rows = {(r["group"], r["metric"]): r for r in compared}
    assert rows[("EXP", "FD")]["reading"] == "better"
    assert rows[("JAW", "MSE")]["reading"] == "worse"
    assert rows[("POSE", "FD")]["reading"] == "within noise"
    assert rows[("EXP", "FD")]["directions"] == 60
    assert "| EXP | FD | 60 |" in (tmp_path / "t.md").read_text()
    capsys.readouterr()
    assert mc.main(["--new", str(tmp_path / "nope"), "--old", str(tmp_path / "old")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err
