"""Starting the face: the launch-less runner over DDS, the launch file, parameters and errors."""
from __future__ import annotations

import ast
import py_compile
import signal
import subprocess
import sys
import time
import types
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from dualtalk_ros.bridge.node_settings import NODE_SETTINGS, AudioCommonSettings
from dualtalk_ros.bridge.param_schema import render_markdown_table
from dualtalk_ros.bridge.share_files import params_file
from dualtalk_ros.launching.process_list import NODE_TOPICS, Options, command, processes
from dualtalk_ros.nodes.audio_common_inputs import subscribe_audio_common
from dualtalk_ros.nodes.inference_worker import RAW_INPUTS
from node_processes import running
from ros_harness import ros_node

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[3]
LAUNCH = ROOT / "launch" / "dualtalk.launch.py"
OUTPUTS = ("face", "head_pose")


def lite_params(tmp_path: Path) -> Path:
    tree = yaml.safe_load(params_file().read_text())
    tree["/**/dualtalk_node"]["ros__parameters"]["model"] = "lite"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def graph(domain: int, until, timeout_s: float = 30.0):
    with ros_node(domain, "graph_probe") as ros:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = until(ros.node)
            if result:
                return result
            time.sleep(0.2)
        return None


def _running(pid: str) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_runner_starts_the_node_with_namespace_and_remapping(tmp_path, ros_domain, ros_env):
    """Every subscription of the node follows an argument: none is left on a fixed name."""
    remapped = {t: f"/in/{t}" for t in NODE_TOPICS if t not in OUTPUTS + ("self_audio",)}
    remapped["partner_face"] = "/face_tracker/partner_coefficients"
    runner_cmd = [sys.executable, "-m", "dualtalk_ros.launching.runner", "--no-use-mic",
                  "--no-use-renderer", "--namespace", "/robot1",
                  "--params-file", str(lite_params(tmp_path))]
    runner_cmd += [arg for t, topic in remapped.items()
                   for arg in ("--" + t.replace("_", "-"), topic)]
    # self_audio keeps its relative name: it lands in the namespace
    want_subs = {"/face_tracker/partner_coefficients", "/robot1/self_audio", "/in/partner_audio"}
    want_pubs = {"/robot1/face", "/robot1/head_pose", "/diagnostics"}

    def ready(node):
        # Discovery reports a node's endpoints one by one: wait for all that are checked.
        if ("dualtalk_node", "/robot1") not in node.get_node_names_and_namespaces():
            return None
        subs = dict(node.get_subscriber_names_and_types_by_node("dualtalk_node", "/robot1"))
        pubs = dict(node.get_publisher_names_and_types_by_node("dualtalk_node", "/robot1"))
        return (subs, pubs) if want_subs <= set(subs) and want_pubs <= set(pubs) else None

    # Ctrl-C, as in a terminal: the runner stops its node and exits 0 (checked on leaving).
    with running(runner_cmd, ros_env, signal.SIGINT) as runner:
        found = graph(ros_domain, ready)
        assert found, "dualtalk_node did not come up in /robot1 with the remapped topics"
        assert runner.poll() is None, "the runner exited"
        children = Path(f"/proc/{runner.pid}/task/{runner.pid}/children").read_text().split()
        assert children, "the runner started no node process"
    subs, pubs = found
    assert subs["/face_tracker/partner_coefficients"] == ["dualtalk_msgs/msg/FaceCoefficients"]
    assert subs["/robot1/self_audio"] == ["dualtalk_msgs/msg/AudioChunk"]
    assert subs["/in/partner_audio"] == ["dualtalk_msgs/msg/AudioChunk"]
    fixed = set(subs) - set(remapped.values()) - {"/robot1/self_audio"}
    assert not fixed, f"inputs no launch argument remaps: {sorted(fixed)} (add to Options)"
    assert pubs["/robot1/head_pose"] == ["geometry_msgs/msg/PoseStamped"]
    assert "/diagnostics" in pubs
    alive = [pid for pid in children if _running(pid)]
    assert not alive, f"node process(es) {alive} outlived the runner"


def test_every_input_topic_of_the_node_is_an_argument(monkeypatch):
    """The raw inputs and the audio_common voices (with stand-in message classes: the real
    package is optional) are all Options fields, remapped on dualtalk_node."""
    fake = types.ModuleType("audio_common_msgs.msg")
    for name in ("AudioData", "AudioDataStamped", "AudioInfo"):
        setattr(fake, name, type(name, (), {}))
    monkeypatch.setitem(sys.modules, "audio_common_msgs", types.ModuleType("audio_common_msgs"))
    monkeypatch.setitem(sys.modules, "audio_common_msgs.msg", fake)
    topics = []
    node = types.SimpleNamespace(
        create_subscription=lambda msg_type, topic, *a, **kw: topics.append(topic),
        get_logger=lambda: None)
    subscribe_audio_common(node, AudioCommonSettings(), lambda kind: print)
    inputs = set(RAW_INPUTS) | set(topics)
    assert {"self_voice", "partner_voice_stamped", "partner_voice_info"} <= inputs
    options = {f.name for f in fields(Options)}
    assert inputs <= options and inputs <= set(NODE_TOPICS), inputs - options
    remaps = dict(processes(Options(**{t: f"/x/{t}" for t in NODE_TOPICS}))[0].remappings)
    assert remaps == {t: f"/x/{t}" for t in NODE_TOPICS}


def test_runner_has_a_flag_for_every_launch_argument():
    """`dualtalk-run --help` lists a flag per Options field (the launch file declares one
    argument per field: checked by the next test)."""
    out = subprocess.run([sys.executable, "-m", "dualtalk_ros.launching.runner", "--help"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    missing = [f.name for f in fields(Options) if "--" + f.name.replace("_", "-") not in out]
    assert not missing, missing


def test_launch_file_and_runner_share_one_process_list():
    py_compile.compile(str(LAUNCH), doraise=True)
    tree = ast.parse(LAUNCH.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module == "dualtalk_ros.launching.process_list" for a in n.names}
    assert {"Options", "processes", "params_file"} <= imported
    procs = processes(Options())
    assert [p.name for p in procs] == ["dualtalk_node", "mic_node", "avatar_renderer"]
    opts = Options(namespace="/r", partner_audio="/mic", use_sim_time=True)
    cmd = command(processes(opts)[0], opts)
    assert cmd[cmd.index("--params-file") + 1] == str(params_file())
    assert "__ns:=/r" in cmd and "partner_audio:=/mic" in cmd and "use_sim_time:=true" in cmd
    launch_args = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
                   and getattr(n.func, "id", "") == "DeclareLaunchArgument" and n.args
                   and isinstance(n.args[0], ast.Constant)}
    # Arguments are generated from Options' fields, not listed by hand.
    assert not launch_args and "fields(Options)" in LAUNCH.read_text()


@pytest.mark.parametrize("override, message", [
    ("stream.hop_ms:=50.0", "multiple of 40"),
    ("model:=/no/such/model", "/no/such/model"),
    ("rig:=flame56", "rig"),
])
def test_bad_parameters_fail_at_start_with_a_clear_error(override, message, ros_env):
    model = [] if override.startswith("model") else ["-p", "model:=lite"]
    out = subprocess.run([sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
                          *model, "-p", override], env=ros_env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "cannot start" in out.stderr and message in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("node", sorted(NODE_SETTINGS))
def test_readme_parameter_tables_are_the_generated_ones(node):
    """The README's tables come from the settings dataclasses, like config/dualtalk.yaml."""
    assert render_markdown_table(node) in (ROOT / "README.md").read_text(), (
        f"README's {node} table is stale: python -m dualtalk_ros.bridge.param_schema "
        f"--markdown {node}")
