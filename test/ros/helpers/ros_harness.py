"""Test helper: a node of the test process in its own rclpy context on a given ROS domain."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class Spinner:
    """The test's node and its executor; `until` spins until a condition holds or time runs out."""

    def __init__(self, node: Node, executor: SingleThreadedExecutor) -> None:
        self.node, self.executor = node, executor

    def until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)
        return done()


@contextmanager
def ros_node(domain: int, name: str) -> Iterator[Spinner]:
    """Init a fresh context on `domain`, yield its node and executor, shut the context down."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    try:
        node = rclpy.create_node(name, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        yield Spinner(node, executor)
    finally:
        rclpy.shutdown(context=context)
