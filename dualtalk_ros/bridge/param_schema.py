"""Settings dataclasses <-> flat ROS parameters, and the generated parameters file.

A node declares one parameter per leaf field of its settings class (`param_specs`), builds its
settings from the parameter values (`settings_from_params`, which names the parameter in every
error), and `config/dualtalk.yaml` is rendered from the same classes:

    python -m dualtalk_ros.bridge.param_schema --write   # regenerate config/dualtalk.yaml
    python -m dualtalk_ros.bridge.param_schema --check   # exit 1 if the file is stale
    python -m dualtalk_ros.bridge.param_schema --markdown dualtalk_node  # the README's table
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from dualtalk_core.config_fields import SettingInfo, check_value, field_types, info
from dualtalk_core.config_files import from_dict
from dualtalk_ros.bridge.node_settings import NODE_SETTINGS
from dualtalk_ros.bridge.share_files import CHECKOUT

PARAMS_FILE = CHECKOUT / "config" / "dualtalk.yaml"
_WIDTH = 99


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: a leaf field of a settings dataclass."""

    name: str  # dotted: "stream.smoothing.beta"
    kind: type  # float, int, bool or str
    default: Any
    info: SettingInfo


def param_specs(cls: type) -> list[ParamSpec]:
    """Every parameter of settings class `cls`, in declaration order, with its default."""
    return list(_walk(cls(), ""))


def _walk(settings: Any, prefix: str) -> Iterator[ParamSpec]:
    kinds = field_types(type(settings))
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(kinds[f.name]):
            yield from _walk(value, f"{prefix}{f.name}.")
        else:
            yield ParamSpec(prefix + f.name, kinds[f.name], value, info(f))


def params_of(settings: Any) -> dict[str, Any]:
    """{dotted parameter name: value} of a settings instance."""
    return {spec.name: spec.default for spec in _walk(settings, "")}


def settings_from_params(cls: type, values: Mapping[str, Any]) -> Any:
    """Settings of class `cls` from {parameter name: value} (absent names keep their default).

    ValueError names the parameter: an unknown name, a wrong type, a value out of range or not
    among its choices; then the class's own cross-field checks run.
    """
    specs = {spec.name: spec for spec in param_specs(cls)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; known: {sorted(specs)}")
    tree: dict[str, Any] = {}
    for name, value in values.items():
        spec = specs[name]
        checked = check_value(value, spec.kind, spec.info, f"parameter {name}")
        *groups, leaf = name.split(".")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = checked
    return from_dict(cls, tree)


def read_only_changes(old: Any, new: Any) -> list[str]:
    """Names of the read-only parameters whose values differ between two settings."""
    before, after = params_of(old), params_of(new)
    return [spec.name for spec in param_specs(type(old))
            if not spec.info.live and before[spec.name] != after[spec.name]]


def render_params_yaml() -> str:
    """The text of config/dualtalk.yaml: every node's defaults, each with its description."""
    lines = [
        "# Default parameters of every DualTalk ROS node. GENERATED from the settings",
        "# dataclasses (dualtalk_ros/bridge/node_settings.py and dualtalk_core's StreamConfig):",
        "# edit those, then run `python -m dualtalk_ros.bridge.param_schema --write`.",
        "# Copy this file to override values (--params-file, or the launch argument",
        "# params_file); [live] parameters can also be changed with `ros2 param set`.",
    ]
    for node, cls in NODE_SETTINGS.items():
        lines += ["", f"/**/{node}:", "  ros__parameters:"]
        opened: list[str] = []
        for spec in param_specs(cls):
            *groups, leaf = spec.name.split(".")
            common = 0
            while common < min(len(opened), len(groups)) and opened[common] == groups[common]:
                common += 1
            for depth in range(common, len(groups)):
                lines.append("    " + "  " * depth + f"{groups[depth]}:")
            opened = groups
            indent = "    " + "  " * len(groups)
            lines += _comment(spec, indent)
            lines.append(f"{indent}{leaf}: {_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


def render_markdown_table(node: str) -> str:
    """The README's parameter table of `node`, from the same declarations as the YAML."""
    rows = ["| parameter | type | default | range | live | meaning |",
            "| --- | --- | --- | --- | --- | --- |"]
    for spec in param_specs(NODE_SETTINGS[node]):
        rows.append(f"| `{spec.name}` | {spec.kind.__name__} | `{_scalar(spec.default)}` | "
                    f"{_bounds(spec)} | {'yes' if spec.info.live else ''} | "
                    f"{spec.info.description} |")
    return "\n".join(rows) + "\n"


def _bounds(spec: ParamSpec) -> str:
    if spec.info.choices is not None:
        return ", ".join(f"`{c}`" if c else "`''`" for c in spec.info.choices)
    if spec.info.min_value is not None:
        return f"{spec.info.min_value:g} .. {spec.info.max_value:g}"
    return ""


def _comment(spec: ParamSpec, indent: str) -> list[str]:
    bounds = [_bounds(spec).replace("`", "")] if _bounds(spec) else []
    bounds.append("live" if spec.info.live else "read-only")
    text = f"{spec.info.description} ({'; '.join(bounds)})"
    return textwrap.wrap(text, _WIDTH, initial_indent=indent + "# ",
                         subsequent_indent=indent + "# ")


def _scalar(value: Any) -> str:
    """A YAML scalar that reads back as the same type (floats keep their '.0')."""
    if isinstance(value, float):
        return repr(value)
    return yaml.safe_dump(value, default_style=None).splitlines()[0].removesuffix(" ...")


def defaults_from_file(path: Path, node: str) -> dict[str, Any]:
    """{parameter: value} of `node`'s section of a parameters file (ROS's flat names)."""
    tree = yaml.safe_load(Path(path).read_text()) or {}
    for key in (f"/**/{node}", node, f"/{node}"):
        section = tree.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            return _flatten(section["ros__parameters"])
    raise ValueError(f"{path}: no '/**/{node}: ros__parameters:' section")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"regenerate {PARAMS_FILE}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    mode.add_argument("--markdown", metavar="NODE", choices=sorted(NODE_SETTINGS),
                      help="print NODE's parameter table for the README")
    args = parser.parse_args(argv)
    if args.markdown:
        print(render_markdown_table(args.markdown), end="")
        return 0
    text = render_params_yaml()
    if args.write:
        PARAMS_FILE.write_text(text)
        print(f"wrote {PARAMS_FILE}")
        return 0
    if PARAMS_FILE.read_text() != text:
        print(f"{PARAMS_FILE} is stale: run python -m dualtalk_ros.bridge.param_schema --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
