"""`dualtalk-bag`: bag round trips, offline vs live evaluation, foreign bags, clear errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from scipy.signal import resample_poly

from dualtalk_core.dataset.clips import load_clip
from dualtalk_core.rigs import get_rig
from dualtalk_ros.bag import bag_cli
from dualtalk_ros.bag import bag_files
from dualtalk_ros.bag.bag_recording import RecordConfig, resample_motion

REPO = Path(__file__).resolve().parents[3]
SECONDS = 6.0
FRAMES = int(SECONDS * 25)
START = 1_700_000_000.0
LIVE_OFFLINE_ATOL = 1e-4  # per face value, every frame (float32 model, same input)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A one-clip corpus (split test) of a ~6.8 s synthetic conversation."""
    from dualtalk_core.synth.corpus import build_clip, write_clip
    from dualtalk_core.synth.dialogue import DialogueConfig

    root = tmp_path_factory.mktemp("corpus")
    dialogue = DialogueConfig(min_rounds=1, max_rounds=1, min_duration_s=6.0, max_duration_s=7.0)
    clip = build_clip("test", 0, seed=0, dcfg=dialogue)
    assert clip.audio.shape[1] >= SECONDS * 16000
    write_clip(clip, root / "test")
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """Lite with fixed random weights: the same model in this process and in the node's."""
    import torch

    from dualtalk_core.model import DualTalkModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "lite"
    DualTalkModel.from_preset("lite", device="cpu").save(path)
    return path


@pytest.fixture(scope="module")
def recorded(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "clip6"
    assert bag_cli.main(["record", "--data", str(corpus), "--clip", "syn_test_00000", "--out",
                         str(out), "--max-seconds", str(SECONDS)]) == 0
    return out


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _eval(bag_path: Path, out: Path, model: Path, *extra: str) -> dict:
    argv = ["eval", "--bag", str(bag_path), "--out", str(out), "--model", str(model),
            "--torch-threads", "1", *extra]
    assert bag_cli.main(argv) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.ros  # the built dualtalk_msgs' type hashes
def test_rosbags_types_hash_like_the_ros_build():
    """Embedded definitions hash as rosidl hashes them: ros2 bag play accepts our bags."""
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("dualtalk_msgs")) / "msg"
    for name in ("AudioChunk", "FaceCoefficients"):
        generated = json.loads((share / f"{name}.json").read_text())["type_hashes"][0]
        store = bag_files.typestore()
        assert store.hash_rihs01(generated["type_name"]) == generated["hash_string"]


@pytest.mark.parametrize("storage,face_rate", [("mcap", 25), ("sqlite3", 30)])
def test_record_round_trip(corpus, tmp_path, storage, face_rate):
    """Every field read back equals the corpus clip (audio to 16-bit PCM precision)."""
    out = tmp_path / "bag"
    assert bag_cli.main(["record", "--data", str(corpus), "--clip", "syn_test_00000", "--out",
                         str(out), "--storage", storage, "--face-rate", str(face_rate),
                         "--max-seconds", "3"]) == 0
    assert (out / "metadata.yaml").read_text().count(f"storage_identifier: {storage}") == 1
    data = bag_files.read_topics(out, {
        "/self_audio": bag_files.AUDIO, "/partner_audio": bag_files.AUDIO,
        "/partner_face": bag_files.FACE,
        "/ground_truth/face": bag_files.FACE, "/ground_truth/head_pose": bag_files.POSE})
    clip, rig = load_clip(corpus, "test", "syn_test_00000"), get_rig("arkit52")
    for topic, track in (("/self_audio", 0), ("/partner_audio", 1)):
        chunks = data[topic]
        assert len(chunks.msgs) == -(-3 * 16000 // 512)
        for i, (log_ns, msg) in enumerate(zip(chunks.log_ns, chunks.msgs)):
            assert (msg.sample_rate, msg.channels, msg.encoding) == (16000, 1, "S16LE")
            assert _stamp(msg) == pytest.approx(START + i * 0.032, abs=1e-6)
            end_ns = round((START + i * 0.032) * 1e9) + len(msg.data) // 2 * 62500
            assert abs(log_ns - end_ns) < 1000  # logged when its last sample is in
        pcm = np.concatenate([np.frombuffer(bytes(m.data), "<i2") for m in chunks.msgs])
        np.testing.assert_allclose(pcm / 32768.0, clip.audio[track][:48000], atol=1 / 32768)
    gt = data["/ground_truth/face"]
    assert [m.names for m in gt.msgs[:1]] == [list(rig.names)] and len(gt.msgs) == 75
    np.testing.assert_array_equal(np.stack([m.values for m in gt.msgs]), clip.motion[0][:75])
    np.testing.assert_allclose([_stamp(m) for m in gt.msgs], START + np.arange(75) / 25)
    quats = np.array([[m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                       m.pose.orientation.w] for m in data["/ground_truth/head_pose"].msgs])
    np.testing.assert_allclose(quats, rig.head_quaternion(clip.motion[0][:75]), atol=1e-12)
    times, partner = resample_motion(clip.motion[1][:75], face_rate)
    faces = data["/partner_face"].msgs
    np.testing.assert_allclose([_stamp(m) for m in faces], START + times, atol=1e-6)
    np.testing.assert_array_equal(np.stack([m.values for m in faces]), partner)


@pytest.mark.slow  # a 6 s bag replayed in real time to a node: 13-26 s
def test_offline_and_live_agree(recorded, model_dir, tmp_path, ros_env):
    offline = _eval(recorded, tmp_path / "offline", model_dir)
    live_cmd = [sys.executable, "-m", "dualtalk_ros.bag.bag_cli", "eval", "--bag", str(recorded),
                "--out", str(tmp_path / "live"), "--model", str(model_dir), "--live",
                "--rate", "1.0", "--torch-threads", "1",
                # A fixed delay sets no frame deadline: audio that arrives late on a loaded
                # machine is waited for (input_timeout_ms), never cut, so the node's input is
                # the bag's, as offline. The default (derived) delay cuts it at the deadline.
                "--node-param", "output.delay_ms:=400"]
    run = subprocess.run(live_cmd, env=ros_env, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    live = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert live["run"]["node_stopped"] and live["run"]["node_exit_status"] == 0, live["run"]
    diagnostics = live["run"]["node_diagnostics"]
    assert diagnostics["input_wait_cap_ms"] == "none (fixed delay)", diagnostics
    from dualtalk_core.model import DualTalkModel

    lookahead_ms = DualTalkModel.load(model_dir).lookahead_ms  # lite: 200 ms
    for result in (offline, live):
        assert result["frames"]["ground_truth"] == result["frames"]["predicted"] == FRAMES
        assert result["latency_ms"]["p50"] >= lookahead_ms - 1e-3  # no sooner than its audio
        assert set(result["metrics"]) == {"EXP", "JAW", "POSE"}
    print(f"\noffline latency {offline['latency_ms']}, wall {offline['run']['wall_s']:.2f} s"
          f"\nlive latency {live['latency_ms']}, run {live['run']}")
    faces = [bag_files.read_topics(tmp_path / mode / "output_bag",
                                   {"/face": bag_files.FACE})["/face"]
             for mode in ("offline", "live")]
    by_stamp = [{round(_stamp(m), 3): np.asarray(m.values) for m in f.msgs} for f in faces]
    common = sorted(set(by_stamp[0]) & set(by_stamp[1]))
    assert len(common) >= FRAMES
    diff = np.array([np.abs(by_stamp[0][t] - by_stamp[1][t]).max() for t in common])
    print(f"live vs offline: max |difference| {diff.max():.2e} over {len(common)} frames")
    # Every frame, not frame 0 only: one model, one engine configuration and the same input at
    # each model run give the same float32 values up to summation order (measured: 0.0). Input
    # differs only when a partner face arrives after its frames' run, which the node counts as
    # late: a failure with late faces > 0 means a loaded machine, not a wrong node.
    late = live["run"]["node_diagnostics"].get("partner_face.late_faces", "?")
    bad = np.flatnonzero(diff > LIVE_OFFLINE_ATOL)
    assert not bad.size, (f"live differs from offline at {bad.size} of {len(common)} frames "
                          f"(first at {common[bad[0]]:.3f} s, by {diff[bad[0]]:.2e}); the node "
                          f"counted {late} late partner faces")


def _foreign_typestore():
    store = get_typestore(Stores.ROS2_JAZZY)
    for path in sorted((REPO / "dualtalk_msgs" / "msg").glob("*.msg")):
        store.register(get_types_from_msg(path.read_text(), f"dualtalk_msgs/msg/{path.stem}"))
    return store


def _write_foreign(path: Path, clip, skip: str = "", wrong: str = "") -> None:
    """A robot's own recording: sqlite3, 48 kHz F32LE in 1024-sample chunks, 30 Hz partner
    face, stamps from another clock, audio starting 13 ms after the ground truth's grid."""
    store, t0, rig = _foreign_typestore(), 1_234_567.25, get_rig("arkit52")
    T = store.types

    def header(t: float):
        ns = round(t * 1e9)
        return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](
            sec=ns // 10**9, nanosec=ns % 10**9), frame_id="x")
    items = []
    for topic, track in (("/robot/voice", 0), ("/human/voice", 1)):
        if topic == wrong:
            msg = T["std_msgs/msg/String"](data="not audio")
            items.append((topic, "std_msgs/msg/String", t0, msg))
            continue
        audio = resample_poly(clip.audio[track], 3, 1).astype("<f4")  # 48 kHz
        for i in range(0, len(audio), 1024):
            data = np.frombuffer(audio[i:i + 1024].tobytes(), np.uint8)
            msg = T[bag_files.AUDIO](header=header(t0 + 0.013 + i / 48000), sample_rate=48000,
                                     channels=1, encoding="F32LE", data=data)
            items.append((topic, bag_files.AUDIO, t0 + 0.013 + (i + 1024) / 48000, msg))
    times, partner = resample_motion(clip.motion[1], 30)
    for t, row in zip(t0 + times, partner):
        msg = T[bag_files.FACE](header=header(t), rig="arkit52", names=list(rig.names), values=row)
        items.append(("/human/face", bag_files.FACE, t + 0.05, msg))
    for k, row in enumerate(clip.motion[0]):
        msg = T[bag_files.FACE](header=header(t0 + k / 25), rig="arkit52", names=list(rig.names),
                                values=row)
        items.append(("/mocap/face", bag_files.FACE, t0 + k / 25, msg))
        x, y, z, w = rig.head_quaternion(row)
        orientation = T["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)
        point = T["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0)
        pose = T["geometry_msgs/msg/Pose"](position=point, orientation=orientation)
        items.append(("/mocap/head", bag_files.POSE, t0 + k / 25,
                      T[bag_files.POSE](header=header(t0 + k / 25), pose=pose)))
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {}
        for topic, msgtype, log_s, msg in sorted(items, key=lambda i: i[2]):
            if topic == skip:
                continue
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], round(log_s * 1e9), store.serialize_cdr(msg, msgtype))


FOREIGN_TOPICS = ["--self-audio-topic", "/robot/voice", "--partner-audio-topic", "/human/voice",
                  "--partner-face-topic", "/human/face", "--gt-face-topic", "/mocap/face",
                  "--gt-pose-topic", "/mocap/head"]


def test_bag_made_by_someone_else(corpus, model_dir, tmp_path):
    clip = load_clip(corpus, "test", "syn_test_00000")
    _write_foreign(tmp_path / "foreign", clip)
    result = _eval(tmp_path / "foreign", tmp_path / "out", model_dir, *FOREIGN_TOPICS)
    assert result["frames"]["ground_truth"] == result["frames"]["predicted"] == clip.frames
    assert result["inputs"]["self_audio"]["sample_rate"] == 48000
    assert result["inputs"]["partner_face"]["rate_hz"] == pytest.approx(30.0, rel=1e-3)
    assert "linear interpolation" in (tmp_path / "out" / "report.md").read_text()
    assert bag_files.bag_topics(tmp_path / "out" / "output_bag") == {
        "/face": bag_files.FACE, "/head_pose": bag_files.POSE, "/mocap/face": bag_files.FACE,
        "/mocap/head": bag_files.POSE}


@pytest.mark.parametrize("skip,wrong,expected", [
    ("/human/face", "", "topic /human/face (dualtalk_msgs/msg/FaceCoefficients) is missing"),
    ("", "/robot/voice", "topic /robot/voice has type std_msgs/msg/String, expected "
                         "dualtalk_msgs/msg/AudioChunk"),
])
def test_unusable_bags_fail_clearly(corpus, tmp_path, capsys, skip, wrong, expected):
    clip = load_clip(corpus, "test", "syn_test_00000")
    _write_foreign(tmp_path / "bad", clip, skip=skip, wrong=wrong)
    argv = ["eval", "--bag", str(tmp_path / "bad"), "--out", str(tmp_path / "out"),
            "--model", "lite", *FOREIGN_TOPICS]
    assert bag_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "The bag has: " in err
    assert not (tmp_path / "out").exists()


def test_record_options_are_checked():
    with pytest.raises(ValueError, match="face_rate_hz must be 25 or 30"):
        RecordConfig(face_rate_hz=24)


NO_RCLPY = """
import sys
sys.modules["rclpy"] = None  # any `import rclpy` now raises ImportError
from dualtalk_ros.bag.bag_cli import main
code = main(sys.argv[1:])
assert not any(name == "rclpy" or name.startswith("rclpy.")
               for name, module in sys.modules.items() if module is not None), "rclpy loaded"
sys.exit(code)
"""


def test_offline_eval_needs_no_rclpy(recorded, model_dir, tmp_path):
    done = subprocess.run([sys.executable, "-c", NO_RCLPY, "eval", "--bag", str(recorded),
                           "--out", str(tmp_path / "out"), "--model", str(model_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["frames"]["predicted"] == result["frames"]["ground_truth"] == FRAMES
