"""Fixtures for tests over real DDS: each test gets its own ROS domain on localhost.

Tests that take `ros_domain` need the ROS 2 runtime and are marked `ros`; the rclpy-free layer's
tests (bridge/, offline bag tools) run without it.
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "helpers"))
_domains = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "ros_domain" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ros)


def _require_ros() -> None:
    try:
        import rclpy  # noqa: F401
        import dualtalk_msgs.msg  # noqa: F401
    except ImportError as exc:  # a set-up error, not a test result
        pytest.fail(f"ROS 2 runtime not importable ({exc}); run `make setup` and "
                    "`. scripts/env.sh` (or use `make test`)", pytrace=False)


@pytest.fixture
def ros_domain() -> int:
    """A ROS domain id unique to this test within the run (base from the run's ROS_DOMAIN_ID)."""
    _require_ros()
    base = int(os.environ.get("ROS_DOMAIN_ID", "42"))
    return 100 + (base + next(_domains)) % 100


@pytest.fixture
def ros_env(ros_domain: int) -> dict[str, str]:
    """Environment for child processes: same domain, discovery limited to this machine."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(ros_domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOCALHOST_ONLY="1",
        PYTHONUNBUFFERED="1",
    )
    return env
