"""Node parameters whose defaults live in one place: `config/dualtalk.yaml`.

Each node declares exactly the parameters listed under its name in that file, with the file's
values as defaults and a descriptor saying what the parameter does. A launch file or
`--params-file` then only overrides; nothing is repeated in code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from dualtalk_ros.bridge.share_files import params_file

CONFIG_NAME = "dualtalk.yaml"


def config_path() -> Path:
    return params_file()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'stream': {'hop_ms': 40}} -> {'stream.hop_ms': 40} (ROS nested parameter names)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def defaults(node_name: str) -> dict[str, Any]:
    """Flat default parameters of `node_name` from config/dualtalk.yaml."""
    tree = yaml.safe_load(config_path().read_text()) or {}
    # `/**/name` matches the node in any namespace (a robot may run several faces).
    for key in (f"/**/{node_name}", node_name, f"/{node_name}"):
        if "ros__parameters" in tree.get(key, {}):
            return flatten(tree[key]["ros__parameters"])
    raise KeyError(f"{config_path()} has no '/**/{node_name}: ros__parameters:' section")


def declare(node: Node, node_name: str, descriptions: dict[str, str]) -> dict[str, Any]:
    """Declare every default parameter of `node_name` with its description; return the values."""
    values: dict[str, Any] = {}
    for name, default in defaults(node_name).items():
        text = descriptions.get(name) or descriptions.get(name.split(".")[0], "")
        param = node.declare_parameter(name, default, ParameterDescriptor(description=text))
        values[name] = param.value
    return values


def section(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The parameters under `prefix.`, with the prefix removed (for a core config dataclass)."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in values.items() if k.startswith(start)}
