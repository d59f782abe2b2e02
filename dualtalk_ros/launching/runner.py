"""`dualtalk-run`: start the DualTalk processes without ROS 2 launch (e.g. PyPI-wheel ROS).

Same processes, parameters file, namespace and remappings as launch/dualtalk.launch.py (both
use dualtalk_ros.launching.process_list). Stops every child on Ctrl-C or when one of them exits.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import subprocess
import sys
import time

from dualtalk_ros.launching.process_list import Options, command, processes
from dualtalk_core.child_processes import dump_stacks_on_sigusr1, stop_all

# Less than the 20 s a caller (launch, tests) gives dualtalk-run itself, so its own exit is
# bounded and a hung child's stacks are in the log.
CHILD_STOP_TIMEOUT_S = 10.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Options):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(flag, default=f.default)
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = Options(**vars(_parser().parse_args(argv)))
    dump_stacks_on_sigusr1()
    children = []
    for proc in processes(opts):
        cmd = command(proc, opts)
        print("[dualtalk-run] " + " ".join(cmd), flush=True)
        children.append(subprocess.Popen(cmd))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(c.poll() is None for c in children):
            time.sleep(0.2)
        failed = [c.args[2] for c in children if c.poll() not in (None, 0)]
        if failed:
            print(f"[dualtalk-run] exited: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(children, signal.SIGINT, CHILD_STOP_TIMEOUT_S)


if __name__ == "__main__":
    sys.exit(main())
