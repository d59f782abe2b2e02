"""The node under a hostile stream: `dualtalk-fuzz`'s figures as a benchmark section.

`python -m bench.fuzz --out fuzz.json [--seconds 60] [--seed 0] [--clean]` runs one fuzz run
(`dualtalk_ros.fuzzing.fuzz_cli.run_fuzz`: the node at its defaults, its own process and ROS
domain) and writes every figure, the goals each meets and the verdict line, with the load
before and after. A run that misses a goal is a result, not a failure of the section: the exit
status is 0 whenever the run itself completed.
"""
from __future__ import annotations

import argparse
import logging

from bench.common import load_avg, write_json
from dualtalk_ros.fuzzing.fuzz_cli import claim_fuzz_domain, run_fuzz

log = logging.getLogger("bench.fuzz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to publish (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clean", action="store_true",
                        help="valid conversation only: this machine's baseline")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.fuzz] %(message)s")
    before = load_avg()
    claim = claim_fuzz_domain()  # held until this process exits
    report = run_fuzz(args.seconds, args.seed, claim.domain, clean=args.clean)
    report.update(load_avg_before=before, load_avg_after=load_avg())
    log.info("%s", report["line"])
    write_json(args.out, report)


if __name__ == "__main__":
    main()
