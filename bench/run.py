"""`make bench`: every benchmark section, then results JSON + markdown and pass/fail of targets.

`python -m bench.run [--quick] [--sections core node offline] [--out-dir bench/results]`
writes `<out-dir>/<date>-<machine>.json`, `.md` and `-latency.png` (`-2`, `-3`... after the
name when that day's and machine's run is there already). Each section runs in its own process
(see bench/core.py, bench/node_latency.py, bench/offline.py); a failed section is reported and
the others still run. Targets are reported, not asserted: the exit status is 0 unless the harness
itself breaks.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, load_avg, machine_info, run_section, write_json
from bench.latency_plot import png_path, plot_latency
from bench.report import markdown, measured_config
from bench.targets import targets

CURVE_DIR = ROOT / "bench" / "results" / "lookahead-curve"
# (module, full arguments, --quick arguments, timeout s)
SECTIONS: dict[str, tuple[str, list[str], list[str], float]] = {
    "core": ("bench.core", [], ["--hops", "12", "--threads", "1", "--windows-s", "2", "8",
                                "--official-reps", "1", "--design-seconds", "8"], 480),
    # The node at its defaults, once per design (windowed: + stepper windowed, hop 80 ms).
    "node": ("bench.node_latency", [], ["--seconds", "10"], 300),
    "offline": ("bench.offline", [], ["--lengths-s", "1", "15", "--batches", "1", "4"], 420),
    # Microphone stamps and the node's frame count, measured rather than asserted in tests.
    "ros": ("bench.ros_timing", [], ["--mic-seconds", "4", "--node-seconds", "5"], 240),
    # Reliability: the hostile stream, 10 minutes of conversation, 100 stops under full load.
    "fuzz": ("bench.fuzz", [], ["--seconds", "20"], 400),
    "soak": ("bench.soak", [], ["--seconds", "120"], 1000),
    "shutdown": ("bench.shutdown_loop", [], ["--cycles", "10"], 1800),
    # Echo cancellation: the robot's own voice out of the partner microphone (~1 minute).
    "echo": ("bench.echo", [], ["--seconds", "12", "--rooms", "default"], 300),
}


def git_commit() -> str:
    """Short commit, with '+dirty' when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def run(sections: list[str], quick: bool, out_dir: Path) -> Path:
    started = time.perf_counter()
    results: dict[str, Any] = {"date": datetime.date.today().isoformat(),
                               "machine": machine_info(), "git": git_commit(), "quick": quick,
                               "config": measured_config()}
    print("[bench] measuring at the node's defaults: " + ", ".join(
        f"{k} {v}" for k, v in results["config"].items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in sections:
            module, full, short, timeout = SECTIONS[name]
            print(f"[bench] {name} ...", flush=True)
            results[name] = run_section(module, short if quick else full,
                                        Path(tmp) / f"{name}.json", timeout)
    results["lookahead_curve"] = lookahead_curve()
    results["load_avg_end"] = load_avg()
    results["seconds"] = time.perf_counter() - started
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["targets"] = targets(results)
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", results["machine"]["hostname"]) or "machine"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = results_stem(out_dir, f"{results['date']}-{host}")
    png = png_path(Path(f"{stem}.json"))
    if plot_latency(results, png):
        results["latency_plot"] = png.name
    write_json(f"{stem}.json", results)
    Path(f"{stem}.md").write_text(markdown(results) + "\n")
    return stem


def lookahead_curve() -> dict[str, Any]:
    """The quality-against-lookahead curve of the shipped recipe: training a model per point
    takes ~30 CPU minutes each, so `make bench` reports the latest measured curve (written by
    `python -m dualtalk_core.evaluation.lookahead_curve`, see the model card) with its source."""
    path = CURVE_DIR / "curve.json"
    if not path.is_file():
        return {"error": f"{path.relative_to(ROOT)}: no measured curve"}
    return {"source": str(path.relative_to(ROOT)), "curve": json.loads(path.read_text())}


def results_stem(out_dir: Path, name: str) -> Path:
    """`out_dir/name`, or `name-2`, `-3`... when a run of that day and machine is there: older
    results stay (`bench.report.latest_results` orders runs by date and finishing time)."""
    stem, n = out_dir / name, 1
    while any(Path(f"{stem}{ext}").exists() for ext in (".json", ".md")):
        n += 1
        stem = out_dir / f"{name}-{n}"
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="fewer points (development)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    stem = run(args.sections, args.quick, args.out_dir)
    print(f"[bench] wrote {stem}.json and {stem}.md")
    for t in json.loads(Path(f"{stem}.json").read_text())["targets"]:
        print(f"[bench] {t['result']:>12}  {t['target']}, {t['design']}: {t['shown']} "
              f"(goal {t['goal']})")


if __name__ == "__main__":
    main()
