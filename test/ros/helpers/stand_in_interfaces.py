"""Test helper: build a test-only interface package (a stand-in for one the PyPI ROS wheels lack,
such as audio_common_msgs or tf2_msgs) with colcon, and return an environment that sees it.

The stand-ins carry the real packages' names and message definitions, so the node's optional
code paths (`import audio_common_msgs`, `import tf2_msgs`) run for real over DDS.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def build_stand_ins(names: list[str], work: Path) -> dict[str, str]:
    """colcon-build `fixtures/<name>` for each name into `work`; the environment with them."""
    env = dict(os.environ)
    venv = os.environ.get("VIRTUAL_ENV", sys.prefix)
    # The wheels' ament index lives in the virtualenv prefix; the build must see it.
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [venv]
    env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = os.pathsep.join(prefixes)
    done = subprocess.run(
        ["colcon", "--log-base", str(work / "log"), "build", "--base-paths",
         *[str(FIXTURES / name) for name in names], "--build-base", str(work / "build"),
         "--install-base", str(work / "install"), "--event-handlers", "console_cohesion-"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stand-in build failed:\n{done.stdout[-3000:]}{done.stderr}"
    dump = subprocess.run(["bash", "-c", f". {work}/install/local_setup.bash && env -0"],
                          env=env, check=True, capture_output=True, timeout=60).stdout
    return dict(item.split("=", 1) for item in dump.decode().split("\0") if "=" in item)
