"""dualtalk-render: bags or a corpus clip in, an MP4 with both faces and an audio track out."""
from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from dualtalk_core.synth.corpus import write_corpus
from dualtalk_ros.bag import bag_video
from dualtalk_ros.bag.bag_recording import RecordConfig, record_clip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, {"test": 1}, seed=11)
    return root


def probe(path: Path) -> dict:
    """Streams of an MP4 via the ffmpeg shipped with imageio-ffmpeg (decoding every frame)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    out = subprocess.run([ffmpeg, "-i", str(path), "-map", "0:v", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120).stderr
    frames = int(out.rsplit("frame=", 1)[1].split()[0])
    return {"frames": frames, "audio": "Audio:" in out}


def test_render_a_recorded_bag(corpus, tmp_path):
    bag = tmp_path / "bag"
    record_clip(corpus, "syn_test_00000", bag, RecordConfig(split="test", max_seconds=3.0))
    out = tmp_path / "bag.mp4"
    # The recorded ground truth stands in for the robot's face (/face in an eval output bag).
    assert bag_video.main(["--bag", str(bag), "--left-topic", "/ground_truth/face",
                           "--left-pose-topic", "/ground_truth/head_pose", "--out", str(out),
                           "--max-seconds", "2", "--size", "96"]) == 0
    assert probe(out) == {"frames": 50, "audio": True}


def test_render_a_corpus_clip(corpus, tmp_path):
    out = tmp_path / "clip.mp4"
    assert bag_video.main(["--data", str(corpus), "--clip", "syn_test_00000", "--out",
                           str(out), "--max-seconds", "1.2", "--size", "64"]) == 0
    assert probe(out) == {"frames": 30, "audio": True}


def test_missing_topic_is_a_clear_error(corpus, tmp_path, capsys):
    bag = tmp_path / "bag"
    record_clip(corpus, "syn_test_00000", bag, RecordConfig(split="test", max_seconds=3.0))
    assert bag_video.main(["--bag", str(bag), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "/face" in capsys.readouterr().err
