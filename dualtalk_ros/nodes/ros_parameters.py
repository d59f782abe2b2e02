"""ROS parameters of a node, declared from its settings dataclass, and live changes applied.

Each leaf field becomes a parameter with its own description, its range
(`FloatingPointRange`/`IntegerRange`) or choices, and `read_only` unless a running node applies
it. A `ros2 param set` is either applied (the node's `apply` callback takes the new settings) or
rejected with the reason: a read-only parameter, a wrong type, a value out of range.

Parameters are dynamically typed so that `hop_ms: 80` in a YAML file means 80.0 rather than a
type error; the settings classes check every value's type and range themselves. At start the
values given to the node (params file, `-p`) are checked before anything is declared: an unknown
name (`hop_ms: 50` at the top level) or a bad value is one ValueError naming the parameter,
which `node_main.run` prints as one line before exiting with status 2.
"""
from __future__ import annotations

import difflib
import threading
from typing import Any, Callable

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

from dualtalk_ros.bridge.node_settings import NODE_SETTINGS
from dualtalk_ros.bridge.param_schema import (ParamSpec, param_specs, params_of,
                                              read_only_changes, settings_from_params)

# Parameters rclpy itself declares on every node (or reads from overrides): never unknown.
_RCLPY_OWN = ("use_sim_time", "start_type_description_service")
_RCLPY_PREFIXES = ("qos_overrides.",)


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ParameterDescriptor of one settings field (what `ros2 param describe` shows)."""
    d = ParameterDescriptor(description=spec.info.description, read_only=not spec.info.live,
                            dynamic_typing=True)
    low, high = spec.info.min_value, spec.info.max_value
    if spec.info.choices is not None:
        d.additional_constraints = "one of: " + ", ".join(repr(c) for c in spec.info.choices)
    elif spec.kind is float and low is not None and high is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                     to_value=float(high), step=0.0)]
    elif spec.kind is int and low is not None and high is not None:
        d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return d


def given_values(node: Node) -> dict[str, Any]:
    """{name: value} of the parameters given to `node` (its params file sections and `-p`).

    rclpy keeps them as the node's parameter overrides and has no public accessor for the
    names nobody declares, so the (stable since Foxy) attribute is read here, once.
    """
    overrides = getattr(node, "_parameter_overrides", {})
    return {name: param.value for name, param in overrides.items()}


class NodeSettings:
    """A node's settings as declared ROS parameters, kept current under live changes.

    `apply(new_settings)` is called with every accepted change (before it takes effect in
    `current`); it may raise ValueError to reject the change.
    """

    def __init__(self, node: Node, node_name: str,
                 apply: Callable[[Any], None] | None = None) -> None:
        self.cls = NODE_SETTINGS[node_name]
        self.specs = {spec.name: spec for spec in param_specs(self.cls)}
        self._apply = apply
        # re-entrant: `apply` may read `current` while a change is being decided
        self._lock = threading.RLock()
        # Checked before declaring: rclpy's own range check would raise a traceback-worthy
        # InvalidParameterValueException, and an unknown name would be silently ignored.
        given = given_values(node)
        self._check_names(node_name, given)
        settings_from_params(self.cls, {k: v for k, v in given.items() if k in self.specs})
        for spec in self.specs.values():
            node.declare_parameter(spec.name, spec.default, descriptor(spec))
        values = {name: node.get_parameter(name).value for name in self.specs}
        self._current = settings_from_params(self.cls, values)  # ValueError names the parameter
        node.add_on_set_parameters_callback(self._on_set)

    def _check_names(self, node_name: str, given: dict[str, Any]) -> None:
        """ValueError naming every given parameter this node does not have."""
        unknown = sorted(name for name in given if name not in self.specs
                         and name not in _RCLPY_OWN and not name.startswith(_RCLPY_PREFIXES))
        if unknown:
            hints = [f"{name} (did you mean {close[0]}?)" if close else name
                     for name in unknown
                     for close in [difflib.get_close_matches(name, self.specs, n=1)
                                   or [k for k in self.specs if k.endswith("." + name)][:1]]]
            raise ValueError(f"unknown parameter(s) of {node_name}: {', '.join(hints)}; see "
                             "config/dualtalk.yaml for the known ones")

    @property
    def current(self) -> Any:
        with self._lock:
            return self._current

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        ours = {p.name: p.value for p in params if p.name in self.specs}
        if not ours:
            return SetParametersResult(successful=True)  # e.g. use_sim_time
        with self._lock:
            values = params_of(self._current)
            values.update(ours)
            try:
                candidate = settings_from_params(self.cls, values)
                frozen = read_only_changes(self._current, candidate)
                if frozen:
                    raise ValueError(f"read-only parameter(s) {frozen}: restart the node to "
                                     "change them")
                if self._apply is not None:
                    self._apply(candidate)
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            self._current = candidate
        return SetParametersResult(successful=True)
