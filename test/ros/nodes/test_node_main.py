"""node_main's stop signals: a stop that lands where Python cannot raise it (a callback the
interpreter runs on its own) is still a stop, and prints nothing."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, weakref
from dualtalk_ros.nodes.node_main import _StopSignals
stop = _StopSignals()
class Thing: pass
thing = Thing()
def callback(_):  # the signal is handled inside it, as in an import lock's weakref callback
    os.kill(os.getpid(), signal.SIGTERM)
    sum(range(200000))
ref = weakref.ref(thing, callback)
del thing
print("requested", stop.requested.is_set(), flush=True)
os._exit(0)  # before the armed deadline
"""


def test_a_stop_dropped_by_python_is_kept_and_quiet():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "requested True", done
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_other_unraisable_exceptions_still_print():
    script = SCRIPT.replace("os.kill(os.getpid(), signal.SIGTERM)", "raise ValueError('x')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert "Exception ignored" in done.stderr and "ValueError" in done.stderr, done.stderr
