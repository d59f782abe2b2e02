"""House rules that keep the tree readable, checked on every run (docs/DESIGN.md, STYLE.md).

No library module over 400 lines, no function over 50, no two modules with one name, and the
frame and sample rates defined in one place only.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dualtalk_core", "dualtalk_ros")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these modules: {long}"


def test_no_function_is_over_50_lines():
    long = []
    for path in _modules() + sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert not long, f"split these functions: {long}"


def test_no_two_modules_share_a_name():
    names = Counter(p.stem for p in _modules() if p.stem != "__init__")
    assert not [n for n, c in names.items() if c > 1], names.most_common(3)


@pytest.mark.parametrize("pattern", [r"^\s*\w*(FPS|FRAME_RATE\w*)\s*=\s*25\b",
                                     r"^\s*\w*RATE\w*\s*=\s*16_?000\b",
                                     r"^\s*\w*SAMPLES_PER_FRAME\s*=\s*(640|\w)"])
def test_rates_are_defined_once_in_units(pattern):
    files = _modules() + sorted((ROOT / "bench").glob("*.py"))
    defining = [str(p.relative_to(ROOT)) for p in files if re.search(pattern, p.read_text(), re.M)]
    assert defining == ["dualtalk_core/units.py"], defining
