"""`dualtalk-eval`: the paper's Table 2 protocol on a corpus split, for the model and baselines.

Every clip is scored in both directions (each speaker is the target once), with the published
inference: one whole-clip `predict` call, no smoothing. Metrics are per clip and per group
(dualtalk_core.evaluation.metrics), then averaged over clip directions. Outputs in `--out`:
`metrics.json` (raw means, counts, and with baselines a verdict), `per_clip.jsonl`, `table.md`
(paper layout, scaled; FD split into offset and spread; the verdict: is the model ahead of each
baseline, and does zeroing the partner hurt it, with a paired bootstrap interval per cell that
tells a lead from noise) and `plots/*.png` (channel trajectories of a few clips).

Scoring is `scoring`, the verdict `verdict`, the Markdown `tables`, the figures `plots`.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from dualtalk_core.dataset.clips import list_clips
from dualtalk_core.evaluation.plots import plot_clips
from dualtalk_core.evaluation.scoring import evaluate_model
from dualtalk_core.evaluation.tables import (format_aliveness, format_fd_split,
                                             format_listener_events, format_table,
                                             format_verdict, format_voice_alone)
from dualtalk_core.evaluation.verdict import verdict

log = logging.getLogger(__name__)


def write_outputs(results: dict[str, Any], out_dir: str | Path) -> None:
    """metrics.json (without per-clip rows; with the verdict when there are baselines),
    per_clip.jsonl and table.md (the Table 2 layout, the FD split, blinks and head motion per
    role, the voice-alone effect, then the verdict)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in results.items() if k != "per_clip"}
    table = format_table(results) + "\n" + format_fd_split(results)
    table += "\n" + format_aliveness(results) + "\n" + format_voice_alone(results)
    table += "\n" + format_listener_events(results)
    if len(results["methods"]) > 1:
        summary["verdict"] = verdict(results)
        table += "\n" + format_verdict(summary["verdict"])
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    with open(out_dir / "per_clip.jsonl", "w") as f:
        for row in results.get("per_clip", []):
            f.write(json.dumps(row, allow_nan=False) + "\n")
    (out_dir / "table.md").write_text(table)


def _load_model(path: str, device: str, idle: bool, seed: int) -> Any:
    """The network, with its idle motion where the checkpoint has one and `idle` asks: the face
    a stream publishes (its blinks and sway count in the tables like the rest of the face)."""
    # Imported here, not at the top: `--help` and argument errors answer without torch.
    from dualtalk_core.model import DualTalkModel
    from dualtalk_core.model.idle_motion import IdlePredictor

    network = DualTalkModel.load(path, device=device)
    if idle and network.idle_motion is not None:
        return IdlePredictor(network, network.idle_motion, seed)
    return network


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dualtalk-eval", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="corpus root with train/, test/, ood/")
    p.add_argument("--split", default="test", help="split folder to score (default: test)")
    p.add_argument("--model", required=True, help="checkpoint folder or published DualTalk.pth")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--baselines", action="store_true",
                   help="also score speaker-only, random, nearest-motion and mirror")
    p.add_argument("--max-clips", type=int, default=None, help="score only the first N clips")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the model runs (default: auto = CUDA when available)")
    p.add_argument("--train-split", default="train", help="split the baselines draw from")
    p.add_argument("--max-train-clips", type=int, default=500,
                   help="seeded subset of train clips for the baselines (default: 500)")
    p.add_argument("--plots", type=int, default=3, help="clips to plot (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-idle-motion", dest="idle_motion", action="store_false",
                   help="score the network alone, without the checkpoint's idle motion")
    args = p.parse_args(argv)
    if args.max_clips is not None and args.max_clips < 1:
        p.error("--max-clips must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = _load_model(args.model, args.device, args.idle_motion, args.seed)
        results = evaluate_model(model, args.data, args.split, args.baselines, args.max_clips,
                                 args.train_split, args.max_train_clips, args.seed)
        write_outputs(results, args.out)
        clips = list_clips(args.data, args.split)[: min(args.plots, results["n_clips"])]
        plot_clips(model, args.data, args.split, clips, Path(args.out) / "plots", results["rig"])
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    print((Path(args.out) / "table.md").read_text())
    print(f"wrote {args.out}/metrics.json, table.md, per_clip.jsonl and plots/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
