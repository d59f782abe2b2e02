"""Hostile bags given to `dualtalk-bag` and `dualtalk-render`.

A file that is not a readable rosbag2 (truncated, corrupted, another format, a topic of the
wrong type) is one line naming it, exit status 2, no traceback. Bad records inside a good bag
are reported with their topic and log time and counted, and the evaluation goes on. Every bag
is written here with rosbags (`bag_files.BagWriter`) and then damaged on disk.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dualtalk_core.rigs import get_rig
from dualtalk_ros.bag import bag_files

START = 100.0
SECONDS = 3.0
CHUNK = 512


def _write_eval_bag(path: Path, storage: str = "mcap", damage: bool = False) -> Path:
    """The five topics `dualtalk-bag eval` reads, SECONDS long; `damage` adds three bad records:
    an undeserializable face at START+1, a NaN face at START+1.2, an unknown encoding at
    START+1.5 s (log time = stamp)."""
    rig = get_rig("arkit52")
    names, neutral = list(rig.names), rig.neutral_array()
    st = bag_files.typestore()
    with bag_files.BagWriter(path, storage) as bag:
        for topic in ("/self_audio", "/partner_audio"):
            bag.add(topic, bag_files.AUDIO)
        for topic in ("/partner_face", "/ground_truth/face"):
            bag.add(topic, bag_files.FACE)
        bag.add("/ground_truth/head_pose", bag_files.POSE)
        n_chunks = int(SECONDS * 16000 / CHUNK)
        for i in range(n_chunks):
            t = START + i * CHUNK / 16000
            tone = 0.3 * np.sin(2 * np.pi * 220 * (i * CHUNK + np.arange(CHUNK)) / 16000)
            bag.write("/self_audio", t, bag_files.audio_msg(tone, 16000, t, "mic"))
            bag.write("/partner_audio", t, bag_files.audio_msg(0.5 * tone, 16000, t, "p"))
        for i in range(int(SECONDS * 25)):
            t = START + i / 25
            face = neutral + 0.1 * np.sin(i / 5.0)
            bag.write("/partner_face", t, bag_files.face_msg(face, names, rig.name, t, "p"))
            bag.write("/ground_truth/face", t, bag_files.face_msg(face, names, rig.name, t, "r"))
            bag.write("/ground_truth/head_pose", t,
                      bag_files.pose_msg(np.array([0.0, 0.0, 0.0, 1.0]), t, "r"))
        if damage:
            good = st.serialize_cdr(bag_files.face_msg(neutral, names, rig.name, START + 1, "p"),
                                    bag_files.FACE)
            bag.write_raw("/partner_face", int((START + 1.0) * 1e9), good[: len(good) // 2])
            nan_face = bag_files.face_msg(np.full(rig.dim, np.nan), names, rig.name,
                                          START + 1.2, "p")
            bag.write("/partner_face", START + 1.2, nan_face)
            odd = bag_files.audio_msg(np.zeros(CHUNK), 16000, START + 1.5, "mic")
            odd.encoding = "BOGUS"
            bag.write("/self_audio", START + 1.5, odd)
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    return {storage: _write_eval_bag(root / storage, storage) for storage in ("mcap", "sqlite3")}


def _storage_file(bag: Path) -> Path:
    return next(f for f in bag.iterdir() if f.suffix in (".mcap", ".db3"))


def _damaged(bags: dict[str, Path], tmp_path: Path, storage: str, how: str) -> Path:
    bag = Path(shutil.copytree(bags[storage], tmp_path / f"{storage}_{how}"))
    data_file = _storage_file(bag)
    data = bytearray(data_file.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "corrupted":  # garbage over a stretch in the middle of the file
        middle = len(data) // 2
        data[middle:middle + 4096] = np.random.default_rng(0).bytes(4096)
    elif how == "empty":
        data = bytearray()
    data_file.write_bytes(bytes(data))
    return bag


def _run(module: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                          timeout=300)


def _one_error_line(done: subprocess.CompletedProcess, prefix: str) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, done.stderr
    return lines[0]


def _eval(bag: Path, out: Path) -> subprocess.CompletedProcess:
    return _run("dualtalk_ros.bag.bag_cli", "eval", "--bag", str(bag), "--out", str(out),
                "--model", "lite", "--torch-threads", "1")


@pytest.mark.parametrize("storage, how, needle", [
    ("mcap", "truncated", "not a readable rosbag2"),
    ("mcap", "corrupted", "truncated or corrupted"),
    ("mcap", "empty", "not a readable rosbag2"),
    ("sqlite3", "truncated", "not a readable rosbag2"),
    ("sqlite3", "empty", "not a readable rosbag2"),
])
def test_a_damaged_bag_is_one_line_naming_it(bags, tmp_path, storage, how, needle):
    bag = _damaged(bags, tmp_path, storage, how)
    line = _one_error_line(_eval(bag, tmp_path / "out"), "dualtalk-bag eval: error:")
    assert str(bag) in line and needle in line, line
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_something_that_is_not_a_bag_is_one_line(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    fake = tmp_path / "fake.mcap"
    fake.write_text("this is text")
    for path in (folder, fake, folder / "cat.jpg"):
        line = _one_error_line(_eval(path, tmp_path / "out"), "dualtalk-bag eval: error:")
        assert str(path) in line and "not a readable rosbag2" in line, line


def test_a_topic_of_the_wrong_type_is_one_line(bags, tmp_path):
    done = _run("dualtalk_ros.bag.bag_cli", "eval", "--bag", str(bags["mcap"]), "--out",
                str(tmp_path / "out"), "--model", "lite", "--self-audio-topic", "/partner_face",
                "--partner-face-topic", "/self_audio")
    line = _one_error_line(done, "dualtalk-bag eval: error:")
    assert (f"topic /partner_face has type {bag_files.FACE}, expected {bag_files.AUDIO}"
            in line), line


def test_render_refuses_a_truncated_bag_in_one_line(bags, tmp_path):
    bag = _damaged(bags, tmp_path, "mcap", "truncated")
    done = _run("dualtalk_ros.bag.bag_video", "--bag", str(bag), "--out",
                str(tmp_path / "x.mp4"))
    line = _one_error_line(done, "dualtalk-render:")
    assert str(bag) in line and "not a readable rosbag2" in line, line
    done = _run("dualtalk_ros.bag.bag_video", "--bag", str(bags["mcap"]), "--out",
                str(tmp_path / "x.mp4"), "--left-topic", "/self_audio")
    line = _one_error_line(done, "dualtalk-render:")
    assert "/self_audio" in line and f"has it as {bag_files.AUDIO}" in line, line


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bad_records_are_reported_with_topic_and_time_and_the_replay_goes_on(tmp_path,
                                                                             storage):
    bag = _write_eval_bag(tmp_path / "bag", storage, damage=True)
    done = _eval(bag, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    corrupted = metrics["corrupted_messages"]
    assert list(corrupted) == ["/partner_face"] and len(corrupted["/partner_face"]) == 1
    assert corrupted["/partner_face"][0]["log_time_s"] == pytest.approx(START + 1.0)
    run = metrics["run"]
    assert run["dropped_messages"] == {"partner_face": 1, "self_audio": 1}
    first = {(d["topic"], round(d["log_time_s"], 3)): d["reason"] for d in run["first_dropped"]}
    assert set(first) == {("/partner_face", START + 1.2), ("/self_audio", START + 1.5)}
    assert "NaN" in first[("/partner_face", START + 1.2)]
    assert "BOGUS" in first[("/self_audio", START + 1.5)]
    assert "/partner_face: corrupted message at log time 101.000 s skipped" in done.stderr
    assert "warning: corrupted messages skipped" in done.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    assert ("- bad data skipped: corrupted records {'/partner_face': 1}, messages failing the "
            "input checks {'partner_face': 1, 'self_audio': 1}") in report, report
    # The rest of the bag was used: every ground-truth frame but the edges is predicted.
    frames = metrics["frames"]
    assert frames["ground_truth"] == int(SECONDS * 25)
    assert frames["predicted"] >= frames["ground_truth"] - 3, frames


@pytest.mark.parametrize("live", [False, True])
def test_an_unusable_model_is_one_line_offline_and_live(bags, tmp_path, ros_env, live):
    """Offline the CLI loads the model; live the node does and exits 2: both are status 2."""
    weights = tmp_path / "DualTalk.pth"
    weights.write_bytes(b"PK\x03\x04 cut short")
    argv = ["-m", "dualtalk_ros.bag.bag_cli", "eval", "--bag", str(bags["mcap"]), "--out",
            str(tmp_path / "out"), "--model", str(weights)] + (["--live"] if live else [])
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=300, env=ros_env)
    line = _one_error_line(done, "dualtalk-bag eval: error:")
    if live:  # the node's own line names the file; the CLI's says the node refused
        assert "refused to start" in line, line
        line = next(x for x in done.stderr.splitlines() if "cannot start" in x)
    assert str(weights) in line and "truncated or corrupted" in line, done.stderr
