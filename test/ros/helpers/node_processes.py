"""Test helper: a child process (a node, a publisher) whose shutdown is part of the test.

Why: a test that ignores how its node stopped passes when the node hangs on SIGTERM or exits
with a traceback. Every node promises a clean exit (status 0) on SIGINT/SIGTERM in every state;
`running` checks it each time a test ends normally, and only stops (never masks the original
failure) when the test body has already failed.
"""
from __future__ import annotations

import signal
import subprocess
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from dualtalk_core.child_processes import STOP_TIMEOUT_S, stop_all


def check_stopped(procs: Sequence[subprocess.Popen], sig: int = signal.SIGTERM,
                  timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Send `sig` to those still running; assert each exits within `timeout_s` with status 0.

    `timeout_s` is the hang detector of `stop_all` (stacks dumped, then killed), not a timing
    figure: how fast nodes stop is measured by the benchmark.
    """
    stopped = stop_all(list(procs), sig, timeout_s)
    for proc, ok in zip(procs, stopped):
        name = " ".join(str(a) for a in list(proc.args)[1:3])
        assert ok, f"{name} did not exit within {timeout_s:.0f} s of signal {sig}"
        assert proc.returncode == 0, f"{name} exited with status {proc.returncode}"


@contextmanager
def running(args: Sequence[str], env: dict[str, str], sig: int = signal.SIGTERM,
            **popen: Any) -> Iterator[subprocess.Popen]:
    """Start `args`; on leaving, stop it with `sig` and check its clean exit (status 0 within
    STOP_TIMEOUT_S). A process that already exited must have exited with 0 too."""
    proc = subprocess.Popen(list(args), env=env, **popen)
    try:
        yield proc
    except BaseException:
        stop_all([proc], sig)
        raise
    check_stopped([proc], sig)
