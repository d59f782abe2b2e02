"""A model swapped in while the node runs: `ros2 param set /dualtalk_node model <folder>`.

Loading and warming a model takes seconds; the face must not freeze meanwhile. The new pipeline
is built on its own thread while the old one keeps publishing, and the worker installs it
between two steps. A model that fails to load is one logged error and an ERROR period in
/diagnostics; the old model stays, and the `model` parameter is set back to it so that
`ros2 param get` never names a model that is not running.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rclpy.parameter import Parameter

from dualtalk_ros.bridge.face_pipeline import FacePipeline, build_pipeline
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings
from dualtalk_ros.nodes import node_main

if TYPE_CHECKING:
    from dualtalk_ros.nodes.dualtalk_node import DualTalkNode


class ModelSwap:
    """At most one model loading at a time; a newer request supersedes an older one."""

    def __init__(self, node: DualTalkNode) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._generation = 0
        self._ready: FacePipeline | None = None
        self._failed: tuple[str, str] | None = None  # (model asked for, why it failed)
        self.reverting = False  # the parameter is being set back: not a new request

    def start(self, settings: DualTalkNodeSettings) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._ready, self._failed = None, None
        self.node.get_logger().info(f"loading model {settings.model or 'default'} in the "
                                    "background; the current one runs until it is ready")
        threading.Thread(target=self._load, args=(settings, generation), daemon=True,
                         name="model_swap").start()

    def cancel(self) -> None:
        """Forget any load in progress (its result is dropped when it finishes)."""
        with self._lock:
            self._generation += 1
            self._ready, self._failed = None, None

    def _load(self, settings: DualTalkNodeSettings, generation: int) -> None:
        node = self.node
        try:
            pipe = build_pipeline(settings, lambda: node.settings.inputs.max_clock_skew_s)
        except node_main.START_ERRORS as exc:  # what a bad model raises at start too
            with self._lock:
                if generation == self._generation:
                    self._failed = (settings.model, str(exc))
            return
        with self._lock:
            if generation == self._generation:
                self._ready = pipe

    def take(self) -> FacePipeline | None:
        """A pipeline ready to install (once), after reporting a failed load if there was one."""
        with self._lock:
            ready, failed = self._ready, self._failed
            self._ready, self._failed = None, None
        if failed is not None:
            self._report_failure(*failed)
        return ready

    def _report_failure(self, model: str, why: str) -> None:
        node = self.node
        running = node.pipe.model if node.pipe is not None else node.settings.model
        node.health.count("model_swap_failed")
        node.get_logger().error(f"model {model or 'default'} not loaded: {why}; keeping "
                                f"{running or 'default'}")
        self.reverting = True
        try:
            node.set_parameters([Parameter("model", value=running)])
        finally:
            self.reverting = False
