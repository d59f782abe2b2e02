"""The README's workspace recipe finds both packages: colcon and rosdep see dualtalk_msgs.

colcon (and rosdep's `--from-paths`) stop descending at the first package.xml, so a workspace
holding only the cloned repository sees dualtalk_ros and not the dualtalk_msgs folder inside it.
The recipe adds `src/dualtalk_msgs -> dualtalk_ros/dualtalk_msgs`. Here the clone is a symlink
to this checkout; `colcon list` and `colcon info` read package.xml files only (no build).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from catkin_pkg.packages import find_packages

ROOT = Path(__file__).resolve().parents[1]


def _workspace(tmp_path: Path, with_msgs_link: bool) -> Path:
    src = tmp_path / "ws" / "src"
    src.mkdir(parents=True)
    (src / "dualtalk_ros").symlink_to(ROOT, target_is_directory=True)
    if with_msgs_link:  # relative, as the README's `ln -s dualtalk_ros/dualtalk_msgs` makes it
        (src / "dualtalk_msgs").symlink_to(Path("dualtalk_ros") / "dualtalk_msgs",
                                           target_is_directory=True)
    return src.parent


def _colcon(ws: Path, *args: str) -> str:
    colcon = shutil.which("colcon")
    assert colcon, "colcon not found: run scripts/setup.sh (it installs colcon-common-extensions)"
    env = {**os.environ, "COLCON_LOG_PATH": str(ws / "log")}
    out = subprocess.run([colcon, *args], cwd=ws, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("with_msgs_link", [False, True])
def test_colcon_finds_both_packages_only_with_the_readme_symlink(
        tmp_path: Path, with_msgs_link: bool) -> None:
    ws = _workspace(tmp_path, with_msgs_link)
    listed = [line.split("\t") for line in
              _colcon(ws, "list", "--topological-order").splitlines()]
    names = [row[0] for row in listed]
    if not with_msgs_link:  # why the README's recipe needs the link
        assert names == ["dualtalk_ros"], listed
        return
    assert names == ["dualtalk_msgs", "dualtalk_ros"], listed  # messages build first
    assert dict((r[0], r[2]) for r in listed) == {"dualtalk_msgs": "(ros.ament_cmake)",
                                                  "dualtalk_ros": "(ros.ament_python)"}
    info = _colcon(ws, "info", "dualtalk_ros")
    assert "build: dualtalk_msgs" in info, info


def test_rosdep_from_paths_sees_dualtalk_msgs_as_a_source_package(tmp_path: Path) -> None:
    """`rosdep install --from-paths src --ignore-src` crawls with catkin_pkg: with the link it
    finds dualtalk_msgs among the sources, so the key needs no rosdep definition."""
    ws = _workspace(tmp_path, with_msgs_link=True)
    assert sorted(find_packages(str(ws / "src"))) == ["dualtalk_msgs", "dualtalk_ros"]
