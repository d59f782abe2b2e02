"""`make bench`: every benchmark section, then results JSON + markdown and pass/fail of targets.

`python -m bench.run [--quick] [--sections core node offline] [--out-dir bench/results]`
writes `<out-dir>/<date>-<machine>.json` and `.md`. Each section runs in its own process (see
bench/core.py, bench/node_latency.py, bench/offline.py); a failed section is reported and the
others still run. Targets are reported, not asserted: the exit status is 0 unless the harness
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
from bench.report import markdown, measured_config, node_default_hop_ms, targets

# (module, full arguments, --quick arguments, timeout s)
SECTIONS: dict[str, tuple[str, list[str], list[str], float]] = {
    "core": ("bench.core", [], ["--hops", "12", "--threads", "1", "--windows-s", "2", "8",
                                "--official-reps", "1"], 420),
    # The node at its default hop (config/dualtalk.yaml) and at the 40 ms naive baseline.
    "node": ("bench.node_latency", ["--hop-ms", f"{node_default_hop_ms():g}", "40"],
             ["--seconds", "8", "--hop-ms", f"{node_default_hop_ms():g}"], 300),
    "offline": ("bench.offline", [], ["--lengths-s", "1", "15", "--batches", "1", "4"], 420),
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
    results["load_avg_end"] = load_avg()
    results["seconds"] = time.perf_counter() - started
    results["targets"] = targets(results)
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", results["machine"]["hostname"]) or "machine"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{results['date']}-{host}"
    write_json(stem.with_suffix(".json"), results)
    stem.with_suffix(".md").write_text(markdown(results) + "\n")
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="fewer points (development)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    stem = run(args.sections, args.quick, args.out_dir)
    print(f"[bench] wrote {stem}.json and {stem}.md")
    for t in json.loads(stem.with_suffix(".json").read_text())["targets"]:
        print(f"[bench] {t['result']:>12}  {t['target']}: {t['shown']} (goal {t['goal']})")


if __name__ == "__main__":
    main()
