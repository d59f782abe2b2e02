"""The lookahead curve reads dualtalk-eval rows and reads each point against the reference."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dualtalk_core.evaluation import lookahead_curve as lc
from dualtalk_core.rigs import GROUPS


def _run(folder, level: float, seed: int) -> str:
    """An eval folder whose model rows have FD and MSE around `level` per direction."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    with open(folder / "per_clip.jsonl", "w") as f:
        for clip in range(30):
            for target in (0, 1):
                noise = rng.normal(0, 0.01)
                row = {"clip": f"c{clip}", "target": target, "method": "dualtalk"}
                row.update({g: {"FD": level + noise, "MSE": level / 10 + noise / 10}
                            for g in GROUPS})
                f.write(json.dumps(row) + "\n")
                f.write(json.dumps(dict(row, method="random")) + "\n")  # not the model's
    return str(folder)


def test_points_are_read_against_the_reference(tmp_path, capsys):
    args = []
    for ms, level in ((40, 0.30), (120, 0.20), (200, 0.2001)):
        args += ["--point", str(ms)] + [
            f"{split}={_run(tmp_path / f'{ms}_{split}', level, ms + k)}"
            for k, split in enumerate(("test", "ood"))]
    assert lc.main(args + ["--reference", "120", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "curve.json").read_text())
    cells = result["points"]
    fd40 = cells["40"]["cells"]["test/EXP/FD"]
    assert fd40["vs_reference"] == "worse" and fd40["directions"] == 60
    assert fd40["ci"][0] < fd40["mean"] < fd40["ci"][1]
    assert fd40["mean"] == pytest.approx(0.30, abs=0.005)
    assert cells["200"]["cells"]["ood/POSE/MSE"]["vs_reference"] == "within noise"
    assert "vs_reference" not in cells["120"]["cells"]["test/JAW/FD"]
    text = capsys.readouterr().out
    assert "**ood**" in text and "| 40 ms |" in text and " +" in text
    assert (tmp_path / "out" / "curve.png").stat().st_size > 1000


@pytest.mark.parametrize("args, words", [
    (["--point", "fast", "test=x"], "lookahead in ms"),
    (["--point", "40", "test"], "SPLIT=EVAL_FOLDER"),
    (["--point", "40", "test=/nonexistent/eval"], "per_clip.jsonl"),
    (["--point", "40", "test=A", "--point", "40", "test=B"], "each lookahead once"),
])
def test_bad_arguments_give_one_line_and_status_2(tmp_path, capsys, args, words):
    assert lc.main(args + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err


def test_a_reference_without_its_point_is_refused(tmp_path, capsys):
    run = _run(tmp_path / "r", 0.2, 0)
    assert lc.main(["--point", "80", f"test={run}", "--reference", "120",
                    "--out", str(tmp_path / "o")]) == 2
    assert "--reference 120" in capsys.readouterr().err
