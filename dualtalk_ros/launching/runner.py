"""`dualtalk-run`: start the DualTalk processes without ROS 2 launch (e.g. PyPI-wheel ROS).

Same processes, parameters file, namespace and remappings as launch/dualtalk.launch.py (both
use dualtalk_ros.launching.process_list), and the same behaviour when one fails: its exit is
one line, the others keep running (a face without a microphone is still a face). Ctrl-C or
SIGTERM stops every child; the runner ends by itself once none is left. Exit status: 0 after a
stop in which no node had failed, 1 when any node exited with an error.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import subprocess
import sys
import threading
from types import FrameType

from dualtalk_ros.launching.process_list import Options, command, processes
from dualtalk_core.child_processes import dump_stacks_on_sigusr1, stop_all

# Less than the 20 s a caller (launch, tests) gives dualtalk-run itself, so its own exit is
# bounded and a hung child's stacks are in the log.
CHILD_STOP_TIMEOUT_S = 10.0
POLL_S = 0.2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Options):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(flag, default=f.default)
    return parser


def _say(text: str) -> None:
    print(f"[dualtalk-run] {text}", file=sys.stderr, flush=True)


def _stop_on_signals() -> threading.Event:
    """SIGINT/SIGTERM only set a flag: the main loop stops the children, so no signal can
    interrupt the runner halfway (no KeyboardInterrupt traceback, no child left behind)."""
    stopping = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stopping


def supervise(children: dict[str, subprocess.Popen], stopping: threading.Event) -> bool:
    """Until a stop signal or until every child has exited, reporting each exit in one line.

    Returns True when any child exited with an error.
    """
    reported: set[str] = set()
    failed = False
    while not stopping.wait(POLL_S):
        for name, child in children.items():
            code = child.poll()
            if code is None or name in reported:
                continue
            reported.add(name)
            failed |= code != 0
            running = [n for n, c in children.items() if c.poll() is None]
            _say(f"{name} exited with status {code}"
                 + (" (its error is above)" if code != 0 else "")
                 + (f"; still running: {', '.join(running)}" if running else
                    "; no node left: stopping"))
        if len(reported) == len(children):
            break
    return failed


def main(argv: list[str] | None = None) -> int:
    opts = Options(**vars(_parser().parse_args(argv)))
    dump_stacks_on_sigusr1()
    stopping = _stop_on_signals()
    children: dict[str, subprocess.Popen] = {}
    failed = False
    try:
        for proc in processes(opts):
            if stopping.is_set():
                break
            cmd = command(proc, opts)
            children[proc.name] = subprocess.Popen(cmd)
            _say(f"started {proc.name} (pid {children[proc.name].pid}): {' '.join(cmd)}")
        failed = supervise(children, stopping)
    finally:
        stopped = stop_all(list(children.values()), signal.SIGINT, CHILD_STOP_TIMEOUT_S)
    hung = [name for name, ok in zip(children, stopped) if not ok]
    if hung:
        _say(f"killed after {CHILD_STOP_TIMEOUT_S:.0f} s: {', '.join(hung)}")
    return 1 if failed or hung else 0


if __name__ == "__main__":
    sys.exit(main())
