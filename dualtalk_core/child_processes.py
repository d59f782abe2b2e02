"""Stopping child processes, and saying where one hung when it will not stop.

ROS nodes have been seen (rarely, under load on a freshly set-up machine) not to exit within
20 s of SIGTERM/SIGINT. Every node and `dualtalk-run` register faulthandler on SIGUSR1, so
whoever stops them (`dualtalk-run`, `dualtalk-bag eval --live`, the benchmarks, the tests) can
ask a hung one for its Python stacks before killing it, and the hang is reported instead of
hidden or turned into a silent kill. `dualtalk-sweep` stops its trainings the same way. No ROS
import here: the core uses it too.
"""
from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

STOP_TIMEOUT_S = 20.0
DUMP_WAIT_S = 1.0  # time for faulthandler to write the stacks before the kill


def rss_mib(pid: int) -> float:
    """Resident set size (VmRSS) of a live process in MiB, NaN when it is gone: how the
    benchmarks and the fuzzer watch a node's memory from outside it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def dump_stacks_on_sigusr1() -> None:
    """`kill -USR1 PID` prints every Python thread's stack to stderr: how to see where a node
    hangs (it works even while the main thread is blocked in C code)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def exit_quietly_on_stop_signals() -> None:
    """SIGINT/SIGTERM end this process at once with the conventional status (128 + signal),
    flushing stdout/stderr, instead of a KeyboardInterrupt traceback from inside an import.

    For a process entry point to call before its slow imports (torch, scipy: ~2 s, ~5 s under
    load), until it installs its own handlers (a node's `node_main.run` does). This module
    imports nothing heavy, so little of the start-up is left uncovered.
    """
    def handler(signum: int, frame: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def stop_all(procs: Sequence[subprocess.Popen | None], sig: int = signal.SIGTERM,
             timeout_s: float = STOP_TIMEOUT_S) -> list[bool]:
    """Send `sig` to every running process, then wait for all within one shared `timeout_s`.

    Returns, per process, True when it exited in time (or had already exited, or is None). A
    process still running at the deadline gets SIGUSR1 (its stacks go to its stderr), is killed
    and reported on our stderr; its entry is False.
    """
    running = [p is not None and p.poll() is None for p in procs]
    for proc, alive in zip(procs, running):
        if alive:
            proc.send_signal(sig)  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout_s
    stopped = []
    for proc, alive in zip(procs, running):
        if not alive:
            stopped.append(True)
            continue
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
            stopped.append(True)
        except subprocess.TimeoutExpired:
            _dump_and_kill(proc, sig, timeout_s)  # type: ignore[arg-type]
            stopped.append(False)
    return stopped


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM,
         timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """`stop_all` for one process."""
    return stop_all([proc], sig, timeout_s)[0]


def _dump_and_kill(proc: subprocess.Popen, sig: int, timeout_s: float) -> None:
    print(f"{list(proc.args)[:3]} (pid {proc.pid}) did not exit within {timeout_s:.0f} s of "
          f"signal {sig}: dumping its stacks to its stderr and killing it", file=sys.stderr,
          flush=True)
    proc.send_signal(signal.SIGUSR1)
    time.sleep(DUMP_WAIT_S)
    proc.kill()
    proc.wait(timeout=10)
