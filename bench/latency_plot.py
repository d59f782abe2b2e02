"""The node's face latency histogram of one run: both designs overlaid, p50/p95/p99 marked.

`python -m bench.latency_plot bench/results/<date>-<machine>.json` writes
`<date>-<machine>-latency.png` next to it (`bench.run` does so after every run). The samples
are the per-frame latencies (receive - stamp, ms) stored by bench/node_latency.py.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.targets import LATENCY_P95_MS

OVERVIEW_BIN_MS = 5.0  # the node's pacing period
ZOOM_BIN_MS = 0.25
COLOURS = {"windowed": "tab:blue", "incremental": "tab:orange"}
LINES = {"p50": ":", "p95": "--", "p99": "-."}


def png_path(results_json: Path) -> Path:
    return results_json.with_name(results_json.stem + "-latency.png")


def _bins(low: float, high: float, width: float) -> np.ndarray:
    return np.arange(np.floor(low / width) * width, high + 2 * width, width)


def _histograms(ax: Any, runs: list[dict[str, Any]], edges: np.ndarray, marks: bool) -> None:
    """Each run's latencies as a filled step histogram; its percentiles as lines (`marks`)."""
    for run in runs:
        x = np.asarray(run["latency_samples_ms"])
        colour = COLOURS.get(run.get("design", ""))
        ax.hist(x, bins=edges, histtype="stepfilled", alpha=0.45, color=colour,
                label=f"{run.get('design', '?')}: {run.get('label', '')} (n {len(x)})")
        for key, style in LINES.items() if marks else ():
            value = run["latency_ms"][key]
            ax.axvline(value, color=colour, linestyle=style, linewidth=1.2,
                       label=f"{run.get('design', '?')} {key} {value:.1f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("face latency = receive - frame stamp (ms)")


def plot_latency(results: dict[str, Any], path: Path) -> Path | None:
    """Overlaid histograms of the node runs' latencies (left: with the target and the
    lookahead; right: zoomed, percentiles marked); None when no run has samples."""
    runs = [r for r in results.get("node", {}).get("runs", []) if r.get("latency_samples_ms")]
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    values = np.concatenate([r["latency_samples_ms"] for r in runs])
    lookahead = max((r["lookahead_ms"] for r in runs if r["lookahead_ms"] > 0), default=None)
    fig, (overview, zoom) = plt.subplots(1, 2, figsize=(12, 4.8))
    low = min(LATENCY_P95_MS, lookahead or LATENCY_P95_MS, values.min()) - 10
    _histograms(overview, runs, _bins(low, values.max() + 10, OVERVIEW_BIN_MS), marks=False)
    overview.axvline(LATENCY_P95_MS, color="black", linestyle="--", linewidth=1,
                     label=f"target: p95 <= {LATENCY_P95_MS:g} ms")
    if lookahead:
        overview.axvline(lookahead, color="grey", linestyle=":", linewidth=1,
                         label=f"the models' lookahead ({lookahead:g} ms)")
    overview.set_ylabel(f"frames per {OVERVIEW_BIN_MS:g} ms bin")
    overview.legend(fontsize=7, loc="upper left")
    _histograms(zoom, runs, _bins(values.min() - 1, values.max() + 1, ZOOM_BIN_MS), marks=True)
    zoom.set_ylabel(f"frames per {ZOOM_BIN_MS:g} ms bin")
    zoom.legend(fontsize=6, loc="best")
    fig.suptitle(f"DualTalk node over DDS at its defaults, {results['date']} on "
                 f"{results['machine']['hostname']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a bench/results/<date>-<machine>.json")
    args = parser.parse_args()
    out = plot_latency(json.loads(args.results.read_text()), png_path(args.results))
    print(out or "no node latencies in that file")


if __name__ == "__main__":
    main()
