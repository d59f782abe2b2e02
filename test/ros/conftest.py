"""Fixtures for tests over real DDS: each test gets its own ROS domain on localhost.

Tests that take `ros_domain` (or `ros_env`) need the ROS 2 runtime and are marked `ros`; the
rclpy-free layer's tests (bridge/, offline bag tools) run without it. The domain is claimed from
the machine-wide allocator (dualtalk_ros/launching/ros_domains.py) for the test's duration, so
concurrent test runs, benchmarks and `scripts/env.sh` shells never share one.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "helpers"))

from dualtalk_ros.launching.ros_domains import claim_domain  # noqa: E402


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
def ros_domain() -> Iterator[int]:
    """A ROS domain id (1..101) no other process on this machine uses while the test runs."""
    _require_ros()
    with claim_domain() as claim:
        yield claim.domain


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
