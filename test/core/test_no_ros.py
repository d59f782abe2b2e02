"""House rule 1: dualtalk_core imports and works with ROS absent."""
from __future__ import annotations

import subprocess
import sys

BLOCK_ROS = r"""
import importlib, pkgutil, sys

class BlockRos:
    def find_spec(self, name, path=None, target=None):
        root = name.split(".")[0]
        if root in {"rclpy", "rosidl_runtime_py", "dualtalk_msgs", "std_msgs", "sensor_msgs",
                    "geometry_msgs", "diagnostic_msgs", "builtin_interfaces", "dualtalk_ros"}:
            raise ImportError(f"{name} is blocked: dualtalk_core must not import ROS")
        return None

sys.meta_path.insert(0, BlockRos())
import dualtalk_core
names = [m.name for m in pkgutil.walk_packages(dualtalk_core.__path__, "dualtalk_core.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_core_module_imports_without_ros():
    out = subprocess.run([sys.executable, "-c", BLOCK_ROS], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) >= 2
