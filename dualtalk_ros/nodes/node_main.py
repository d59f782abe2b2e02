"""The standard `main()` of every node: init, build, spin, clean exit.

A node that cannot start (bad parameter, missing model file, no audio device) logs one clear
error and exits with status 2 instead of a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node

from dualtalk_core.child_processes import dump_stacks_on_sigusr1


def run(make_node: Callable[[], Node], args: list[str] | None = None,
        threads: int = 1) -> None:
    dump_stacks_on_sigusr1()
    rclpy.init(args=args)
    try:
        node = make_node()
    except (ValueError, TypeError, KeyError, FileNotFoundError, OSError, RuntimeError) as exc:
        rclpy.logging.get_logger("dualtalk").error(f"cannot start: {exc}")
        rclpy.try_shutdown()
        sys.exit(2)
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else None
    try:
        rclpy.spin(node, executor=executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:
        # SIGTERM/SIGINT shut the context down while spin was building its wait set: a
        # clean stop, not an error (anything else while the context is fine is one)
        if rclpy.ok():
            raise
    finally:
        close = getattr(node, "close", None)
        if close is not None:
            close()
        node.destroy_node()
        rclpy.try_shutdown()
