"""Where the package's data files are: the installed `share/<package>/` copy, else the checkout's.

A colcon install finds them through the ament index; a source checkout (`pip install -e .`, the
tests, CI) finds them next to the code. One lookup for every data file (parameters, .msg files).
"""
from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def share_path(package: str, relative: str, checkout_relative: str | None = None) -> Path:
    """`share/<package>/<relative>` when installed, else `<checkout>/<checkout_relative>`.

    Raises FileNotFoundError naming both places when neither exists.
    """
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory(package)) / relative
        if installed.exists():
            return installed
    except (ImportError, LookupError, ValueError):
        pass
    source = CHECKOUT / (checkout_relative if checkout_relative is not None else relative)
    if source.exists():
        return source
    raise FileNotFoundError(
        f"{relative} found neither in share/{package}/ nor at {source}: build the package "
        "(colcon build) or run from the source checkout")


def params_file() -> Path:
    """The default parameters of every node: `config/dualtalk.yaml`."""
    return share_path("dualtalk_ros", "config/dualtalk.yaml")


def msg_dir() -> Path:
    """The `dualtalk_msgs` .msg folder."""
    return share_path("dualtalk_msgs", "msg", "dualtalk_msgs/msg")
