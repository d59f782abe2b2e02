"""dualtalk_core.child_processes: a process that stops is waited for; one that hangs has its stacks
dumped, is killed and reported."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from dualtalk_core.child_processes import stop, stop_all

HANGS = """
import signal, sys, time
from dualtalk_core.child_processes import dump_stacks_on_sigusr1
dump_stacks_on_sigusr1()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def hang_here():
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
hang_here()
"""
EXITS = """
import time

import pytest
print("ready", flush=True)
time.sleep(60)
"""


def _start(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_process_that_exits_on_the_signal_is_waited_for() -> None:
    proc = _start(EXITS)
    assert stop(proc, signal.SIGTERM, timeout_s=10.0)
    assert proc.returncode == -signal.SIGTERM
    assert stop(proc)  # already gone: nothing to do


def test_a_hung_process_has_its_stacks_dumped_and_is_killed(capfd) -> None:
    hung, fine = _start(HANGS), _start(EXITS)
    started = time.monotonic()
    assert stop_all([hung, None, fine], signal.SIGTERM, timeout_s=1.0) == [False, True, True]
    assert time.monotonic() - started < 8.0
    assert hung.returncode == -signal.SIGKILL and fine.returncode == -signal.SIGTERM
    stacks = hung.stderr.read()
    assert "in hang_here" in stacks and "most recent call first" in stacks  # faulthandler
    assert "did not exit within 1 s" in capfd.readouterr().err
    for proc in (hung, fine):
        proc.stdout.close()
        proc.stderr.close()


SLOW_START = """
from dualtalk_core.child_processes import exit_quietly_on_stop_signals
exit_quietly_on_stop_signals()
print("ready", flush=True)
def import_something_slow():
    while True:
        sum(range(10_000))  # Python bytecode, where a KeyboardInterrupt would be raised
import_something_slow()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_during_start_up_exits_with_the_conventional_status(sig) -> None:
    proc = _start(SLOW_START)
    assert stop(proc, sig, timeout_s=10.0)
    assert proc.returncode == 128 + sig  # as a shell reports a process killed by `sig`
    assert proc.stderr.read() == ""  # no KeyboardInterrupt traceback
    proc.stdout.close()
    proc.stderr.close()
