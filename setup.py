"""The `dualtalk_ros` ament_python package: installs `dualtalk_ros` and `dualtalk_core`.

`pip install -e .` works without ROS (a GPU training box needs only `dualtalk_core`); colcon
installs the same package into a ROS 2 workspace, with launch and config files.
"""
import re
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "dualtalk_ros"
HERE = Path(__file__).parent
# One version for package.xml and setup.py: read it from package.xml.
VERSION = re.search(r"<version>([^<]+)</version>", (HERE / "package.xml").read_text()).group(1)

setup(
    name=PACKAGE,
    version=VERSION,
    packages=find_packages(include=["dualtalk_core", "dualtalk_core.*",
                                    "dualtalk_ros", "dualtalk_ros.*"]),
    package_data={"dualtalk_core": ["models/*/*", "py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/retarget", glob("config/retarget/*.yaml")),
        (f"share/{PACKAGE}/config/rviz", glob("config/rviz/*.rviz")),
        (f"share/{PACKAGE}/config/dds", glob("config/dds/*.xml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "torch>=2.2",
        "transformers>=4.40",
        "safetensors>=0.4",
        "pyyaml>=6.0",
        "scikit-learn>=1.3",
        "tqdm>=4.60",
        "tensorboard>=2.14",
        "matplotlib>=3.7",
        "rosbags>=0.10",
        "imageio-ffmpeg>=0.5",
        "moderngl>=5.10",
    ],
    extras_require={"mic": ["sounddevice>=0.4"], "test": ["pytest>=8", "pytest-timeout>=2"]},
    zip_safe=True,
    maintainer="DualTalk ROS maintainers",
    maintainer_email="dualtalk-ros@example.org",
    description="DualTalk talking-and-listening face for ROS 2, and its pure-Python core library.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "dualtalk_node = dualtalk_ros.nodes.dualtalk_node:main",
            "mic_node = dualtalk_ros.nodes.mic_node:main",
            "avatar_renderer = dualtalk_ros.nodes.avatar_renderer:main",
            "tts_player = dualtalk_ros.nodes.tts_player:main",
            "dualtalk-run = dualtalk_ros.launching.runner:main",
            "dualtalk-bag = dualtalk_ros.bag.bag_cli:main",
            "dualtalk-render = dualtalk_ros.bag.bag_video:main",
            "dualtalk-synth = dualtalk_core.synth.corpus:main",
            "dualtalk-train = dualtalk_core.training.trainer:main",
            "dualtalk-eval = dualtalk_core.evaluation.eval_cli:main",
            "dualtalk-sweep = dualtalk_core.training.sweep:main",
            "dualtalk-fit-idle = dualtalk_core.training.idle_fit:main",
            "dualtalk-fuzz = dualtalk_ros.fuzzing.fuzz_cli:main",
        ],
    },
)
