"""The standard `main()` of every node: init, build, spin, clean exit.

A node that cannot start (missing or unparsable parameters file, bad parameter, missing model
file, no audio device) logs one clear error and exits with status 2 instead of a traceback.
SIGINT and SIGTERM stop it cleanly (status 0, no traceback) in every state: while it builds
(model loading), while it spins, and while its worker threads are busy.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Callable, NoReturn

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node

from dualtalk_core.child_processes import dump_stacks_on_sigusr1
from dualtalk_ros.nodes.dds_profile import apply_dds_profile

START_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, OSError, RuntimeError)
# After a stop signal a node exits within this, even when a thread is stuck in C code
# (a long computation holding the GIL, a hung driver): 2 s is the promise, 0.5 s is margin.
EXIT_DEADLINE_S = 1.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CLOSE_WAIT_S = 0.5  # what a node's close() gets before the exit goes on without it


class Stopped(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM: unwinds start-up or spin to the exit.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way (a callback's
    catch-all) swallows it. Like KeyboardInterrupt it can land anywhere in the main thread:
    also where it must, in a callback blocked on a lock the busy worker holds.
    """


class _StopSignals:
    """SIGINT/SIGTERM: remember the stop, arm a hard deadline, raise `Stopped` once.

    rclpy.init installs its own handlers on top; they shut the context down (which ends spin)
    and then call these.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handler)
        sys.unraisablehook = _quiet_stop(sys.unraisablehook)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            return  # a second Ctrl-C must not break the clean-up
        self.requested.set()
        _arm_deadline()
        raise Stopped()


def _quiet_stop(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """`hook`, except for a `Stopped` that Python could not raise: a signal that lands in a
    callback Python runs on its own (an import lock's weakref callback while the model's
    modules load) has its exception printed as "Exception ignored" and dropped. The stop is
    still requested; the node ends at its next check, so the print is only noise (2 of 100
    stops in `bench/shutdown_loop.py`)."""
    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, Stopped):
            hook(unraisable)
    return quiet


def run(make_node: Callable[[], Node], args: list[str] | None = None,
        threads: int = 1) -> None:
    dump_stacks_on_sigusr1()
    dds_note = apply_dds_profile()  # before rclpy makes the participant
    stop = _StopSignals()
    try:
        _init(args)
        node = _build(make_node, stop)
    except Stopped:
        _exit_now(0)
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else None
    try:
        node.get_logger().info(dds_note)  # inside: a stop may land while it logs
        rclpy.spin(node, executor=executor)
    except (Stopped, KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # After a stop signal: the context shut down under spin (RCLError), or `Stopped` was
        # thrown into rclpy's C++ message conversion and came out as a RuntimeError (seen in
        # bench/shutdown_loop.py). A clean stop either way; without a signal, an error.
        if rclpy.ok() and not stop.requested.is_set():
            raise
    finally:
        try:
            _close(node)
        except Stopped:
            pass  # the first signal came while closing after spin ended on its own
    _exit_now(0)


def _arm_deadline() -> None:
    """Kill this process with SIGALRM's default action if clean-up hangs: the kernel acts on it
    without Python's help, so a thread holding the GIL cannot keep the node alive."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, EXIT_DEADLINE_S)


def _init(args: list[str] | None) -> None:
    """rclpy.init, or one line naming the parameters file and its problem, and exit 2.

    The files are checked first: rcl logs an error line of its own before raising.
    """
    problem = params_file_problem(sys.argv if args is None else args)
    if problem:
        _start_failed(problem)
    try:
        rclpy.init(args=args)
    except rclpy_implementation.RCLError as exc:
        _start_failed(_rcl_message(str(exc)))


def _build(make_node: Callable[[], Node], stop: _StopSignals) -> Node:
    try:
        return make_node()
    except START_ERRORS as exc:
        if stop.requested.is_set():  # Stopped thrown into C++ code comes out as one
            _exit_now(0)
        _start_failed(str(exc))


def _start_failed(message: str) -> NoReturn:
    rclpy.logging.get_logger("dualtalk").error(f"cannot start: {message}")
    rclpy.try_shutdown()
    _exit_now(2)


def _close(node: Node) -> None:
    """The node's own clean-up, bounded by CLOSE_WAIT_S, then ROS's.

    A node's close() may wait for a worker thread that is inside a long computation (a model
    run of seconds): waiting for it would break the 2 s promise, and the process exits right
    after this anyway, so the worker is left to die with it.
    """
    close = getattr(node, "close", None)
    if close is not None:
        closer = threading.Thread(target=close, name="node_close", daemon=True)
        closer.start()
        closer.join(CLOSE_WAIT_S)
        if closer.is_alive():
            # stderr itself: the stop signal shut ROS's context, and its logging with it, down
            sys.stderr.write(f"[WARN] [{node.get_name()}]: close() still waiting after "
                             f"{CLOSE_WAIT_S:.1f} s (a busy worker thread?): exiting without "
                             "it\n")
    node.destroy_node()
    rclpy.try_shutdown()


def _exit_now(code: int) -> NoReturn:
    """Exit without interpreter teardown: unloading torch and friends takes ~1.2 s on a 2-core
    machine (measured), and a daemon worker still in a long computation would delay it further.
    Nothing of a node's needs it: ROS is shut down and the logs are flushed here."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def params_file_problem(argv: list[str]) -> str | None:
    """Why a `--params-file` given in `argv` cannot be read, in one line; None if all can be.

    rcl's own error names the file, but as a traceback with C source positions; this says
    which file and what is wrong with it (missing, unreadable, or where its YAML breaks).
    """
    files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--params-file"]
    for name in files:
        path = Path(name)
        if not path.is_file():
            return f"parameters file {name}: no such file"
        try:
            tree = yaml.safe_load(path.read_text())
        except OSError as exc:
            return f"parameters file {name}: cannot read it ({exc.strerror})"
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f"line {where.line + 1}: " if where is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return f"parameters file {name}: not valid YAML ({line}{problem})"
        if not isinstance(tree, dict):
            return (f"parameters file {name}: expected a mapping of node names to "
                    f"ros__parameters, got {type(tree).__name__}")
    return None


def _rcl_message(text: str) -> str:
    """rcl's error on one line, without its C source positions (`, at /src/x.c:12`)."""
    text = re.sub(r",? at /\S+:\d+", "", text)
    return " ".join(text.split())
