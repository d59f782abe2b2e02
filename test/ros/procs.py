"""Test helper: stop a node process, and when it will not stop, say where it hung.

Nodes have been seen (rarely, under load on a freshly set-up machine, never in isolation) not to
exit within 20 s of SIGTERM/SIGINT. That open shutdown bug is reported, not hidden: the
process's Python stacks are dumped to the test's stderr through faulthandler (SIGUSR1, see
`dualtalk_ros.entry`), it is killed, and the message is printed. A test whose subject is the
shutdown itself asserts the returned flag.
"""
from __future__ import annotations

import signal
import subprocess
import time

STOP_TIMEOUT_S = 20.0


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> bool:
    """Send `sig`, wait; True when it exited in time, else dump its stacks, kill it, False."""
    if proc.poll() is not None:
        return True
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
        return True
    except subprocess.TimeoutExpired:
        print(f"{proc.args[:3]} did not exit within {STOP_TIMEOUT_S:.0f} s of signal {sig}: "
              "dumping its stacks (stderr) and killing it")
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        proc.kill()
        proc.wait(timeout=10)
        return False
