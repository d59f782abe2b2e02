"""`dualtalk-bag`: record a corpus conversation as a robot's rosbag2, and evaluate on bags.

  dualtalk-bag record --data DIR --clip ID --out BAG [--split test] [--storage mcap|sqlite3]
                      [--face-rate 25|30] [--chunk-samples 512] [--robot 1|2] [--start S]
  dualtalk-bag eval --bag BAG --out DIR [--model PATH] [--live --rate R] [--*-topic NAME]

`eval` writes DIR/metrics.json, DIR/report.md and DIR/output_bag. Offline (default) it feeds
the bag through the node's streaming engine in log-time order; `--live` runs the real node in its
own process on sim time and replays the bag to it over DDS with /clock.
Exit status: 0 done, 2 unusable input (missing topic, wrong type, bad option, no model),
1 the live node failed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from dualtalk_ros.bag.bag_scoring import BagInputs, EvalTopics, Predictions

LATENCY = {"offline": "emission log time (the `now` of the step that produced the frame) "
                      "minus frame stamp",
           "live": "receive time on the replayed /clock (sim time) minus frame stamp"}


def _record_parser(sub: Any) -> None:
    from dualtalk_ros.bag.bag_recording import DEFAULT_START_S

    ap = sub.add_parser("record", help="a corpus clip -> the rosbag2 a robot would record")
    ap.add_argument("--data", type=Path, required=True, help="corpus root (DATA/<split>/...)")
    ap.add_argument("--clip", required=True, help="clip name, e.g. syn_test_00000")
    ap.add_argument("--out", type=Path, required=True, help="bag folder to create")
    ap.add_argument("--split", default="test")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ap.add_argument("--face-rate", type=int, choices=(25, 30), default=25,
                    help="partner face rate in Hz (30: interpolated from the 25 fps motion)")
    ap.add_argument("--chunk-samples", type=int, default=512, help="samples per AudioChunk")
    ap.add_argument("--robot", type=int, choices=(1, 2), default=1,
                    help="which speaker is the robot (its motion is the ground truth)")
    ap.add_argument("--start", type=float, default=DEFAULT_START_S,
                    help=f"ROS time of the first sample, s (default {DEFAULT_START_S:.0f})")
    ap.add_argument("--encoding", choices=("S16LE", "F32LE"), default="S16LE")
    ap.add_argument("--max-seconds", type=float, default=None, help="keep only the beginning")


def _eval_parser(sub: Any) -> None:
    ap = sub.add_parser("eval", help="predict the robot's face from a bag and score it")
    ap.add_argument("--bag", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for the results")
    ap.add_argument("--model", default=None,
                    help="model folder or DualTalk.pth (default: the shipped model); 'lite' = "
                         "random weights, for tests only")
    ap.add_argument("--device", default=None, help="auto, cpu or cuda (default: the node's)")
    ap.add_argument("--live", action="store_true",
                    help="run the node over DDS on sim time instead of in this process")
    ap.add_argument("--rate", type=float, default=1.0, help="live replay speed (1 = real time)")
    ap.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                    help="live: a parameter of the node (repeatable), e.g. output.delay_ms:=400 "
                         "(a fixed delay: no frame deadline, so no late audio is cut)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch CPU threads of the engine (live: OMP_NUM_THREADS of the node); "
                         "default: the node's torch_threads (1), far faster on a busy machine "
                         "with few cores")
    defaults = EvalTopics()
    for kind, topic in vars(defaults).items():
        ap.add_argument(f"--{kind.replace('_', '-')}-topic", dest=kind, default=topic,
                        help=f"default {topic}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="dualtalk-bag", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    _record_parser(sub)
    _eval_parser(sub)
    return ap.parse_args(argv)


def record(args: argparse.Namespace) -> int:
    from dualtalk_ros.bag.bag_recording import RecordConfig, record_clip

    cfg = RecordConfig(split=args.split, storage=args.storage, face_rate_hz=args.face_rate,
                       chunk_samples=args.chunk_samples, robot=args.robot, start_s=args.start,
                       encoding=args.encoding, max_seconds=args.max_seconds)
    counts = record_clip(args.data, args.clip, args.out, cfg)
    print(f"wrote {args.out} ({args.storage}):")
    for topic, n in counts.items():
        print(f"  {topic}: {n} messages")
    return 0


def _predict(args: argparse.Namespace, inputs: BagInputs) -> tuple[Predictions, dict]:
    if args.live:
        from dualtalk_ros.bag.live_replay import run_live

        return run_live(inputs, model=args.model, rate=args.rate, device=args.device,
                        torch_threads=args.torch_threads, node_params=args.node_param)
    import torch

    from dualtalk_ros.bag.offline_replay import node_engine, run_offline
    from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

    threads = args.torch_threads or DualTalkNodeSettings().torch_threads  # the node's default
    if threads:
        torch.set_num_threads(threads)
    return run_offline(inputs, node_engine(args.model, args.device))


def evaluate(args: argparse.Namespace) -> int:
    from dualtalk_ros.bag import bag_scoring
    from dualtalk_ros.bag import bag_report

    if args.live and not args.rate > 0:
        raise ValueError(f"--rate must be > 0, got {args.rate}")
    bad = [p for p in args.node_param if ":=" not in p or not p.partition(":=")[0]]
    if bad or (args.node_param and not args.live):
        raise ValueError(f"--node-param {bad[0] if bad else args.node_param[0]!r}: "
                         + ("expected NAME:=VALUE" if bad else "only with --live"))
    if args.torch_threads is not None and args.torch_threads < 1:
        raise ValueError(f"--torch-threads must be >= 1, got {args.torch_threads}")
    if (args.out / "output_bag").exists():
        raise ValueError(f"{args.out / 'output_bag'} exists: remove it or choose another --out")
    topics = EvalTopics(**{k: getattr(args, k) for k in vars(EvalTopics())})
    inputs = BagInputs.read(args.bag, topics)
    preds, run_stats = _predict(args, inputs)
    mode = "live" if args.live else "offline"
    result: dict[str, Any] = {
        "mode": mode, "bag": str(args.bag), "model": args.model or "default",
        "rig": preds.rig.name, "topics": vars(topics),
        **bag_scoring.score(inputs, preds),
        "latency_definition": LATENCY[mode],
        "inputs": bag_scoring.input_summary(inputs), "run": run_stats,
        "corrupted_messages": inputs.corrupted(),
    }
    if args.live:
        result["run"]["rate"] = args.rate
    bag_report.write_all(args.out, result, inputs, preds)
    frames, lat = result["frames"], result["latency_ms"]
    print(f"{mode}: {frames['predicted']}/{frames['ground_truth']} ground-truth frames "
          f"predicted ({frames['emitted']} emitted); latency p50 {lat['p50']:.0f} ms, "
          f"p95 {lat['p95']:.0f} ms; wrote {args.out}/metrics.json, report.md, output_bag")
    _warn_bad_messages(result)
    return 0


def _warn_bad_messages(result: dict[str, Any]) -> None:
    """One stderr line per kind of bad data the replay skipped (details in metrics.json)."""
    corrupted = {t: len(v) for t, v in result["corrupted_messages"].items()}
    if corrupted:
        print(f"warning: corrupted messages skipped (not deserializable): {corrupted}; "
              "topics and log times in metrics.json corrupted_messages", file=sys.stderr)
    dropped = result["run"].get("dropped_messages") or {}
    if dropped:
        print(f"warning: bad input messages dropped (failed the node's input checks): "
              f"{dropped}; see metrics.json run.first_dropped", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return record(args) if args.command == "record" else evaluate(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"dualtalk-bag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # live mode: the node failed to start or died
        print(f"dualtalk-bag {args.command}: failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
