"""A corpus clip -> the rosbag2 a robot would have recorded of that conversation.

The robot is one speaker (speaker1 by default): its voice goes out on /self_audio, the other
speaker's voice on /partner_audio and their face (as a face tracker would deliver it) on
/partner_face; the robot's own recorded motion is the ground truth on /ground_truth/face and
/ground_truth/head_pose. Stamps follow the message contracts (audio: first sample; face: the
frame's time); a message's bag log time is when it would have arrived: audio once its last
sample is captured, a tracked face one tracker frame later, ground truth at its stamp.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dualtalk_core.dataset.clips import load_clip
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from dualtalk_core.rigs import Rig, get_rig
from dualtalk_ros.bag import bag_files

log = logging.getLogger(__name__)

DEFAULT_START_S = 1_700_000_000.0  # 2023-11-14T22:13:20Z: epoch-like, fixed for reproducibility
TOPICS = {"self_audio": "/self_audio", "partner_audio": "/partner_audio",
          "partner_face": "/partner_face", "gt_face": "/ground_truth/face",
          "gt_pose": "/ground_truth/head_pose"}


@dataclass
class RecordConfig:
    """`dualtalk-bag record` options (times in seconds, rates in Hz)."""

    split: str = "test"
    storage: str = "mcap"
    face_rate_hz: int = 25
    chunk_samples: int = 512
    robot: int = 1  # which speaker (1 or 2) is the robot
    start_s: float = DEFAULT_START_S
    encoding: str = "S16LE"
    max_seconds: float | None = None  # keep only the clip's beginning

    def __post_init__(self) -> None:
        if self.face_rate_hz not in (25, 30):
            raise ValueError(f"face_rate_hz must be 25 or 30, got {self.face_rate_hz}")
        if self.chunk_samples < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {self.chunk_samples}")
        if self.robot not in (1, 2):
            raise ValueError(f"robot must be speaker 1 or 2, got {self.robot}")
        if not self.start_s > 0:
            raise ValueError(f"start_s must be > 0 (a ROS time), got {self.start_s}")
        if self.max_seconds is not None and self.max_seconds < 2.0:
            raise ValueError(f"max_seconds must be >= 2 (metrics need 40 frames), got "
                             f"{self.max_seconds}")


def resample_motion(motion: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) motion at 25 fps -> (times (M,) from 0, (M, C) interpolated at `rate_hz`)."""
    src_t = np.arange(len(motion)) / FRAME_RATE_HZ
    n = int(np.floor(src_t[-1] * rate_hz + 1e-9)) + 1
    dst_t = np.arange(n) / rate_hz
    out = np.stack([np.interp(dst_t, src_t, motion[:, c]) for c in range(motion.shape[1])], 1)
    return dst_t, out.astype(np.float32)


def _audio_stream(topic: str, samples: np.ndarray, cfg: RecordConfig,
                  frame_id: str) -> Iterator[tuple[float, str, Any]]:
    chunk = cfg.chunk_samples
    for i in range(0, len(samples), chunk):
        part = samples[i:i + chunk]
        t = cfg.start_s + i / SAMPLE_RATE_HZ
        msg = bag_files.audio_msg(part, SAMPLE_RATE_HZ, t, frame_id, cfg.encoding)
        yield t + len(part) / SAMPLE_RATE_HZ, topic, msg


def _partner_faces(motion: np.ndarray, rig: Rig,
                   cfg: RecordConfig) -> Iterator[tuple[float, str, Any]]:
    times, values = resample_motion(motion, cfg.face_rate_hz)
    for t, row in zip(cfg.start_s + times, values):
        msg = bag_files.face_msg(row, rig.names, rig.name, t, "partner_face")
        yield t + 1.0 / cfg.face_rate_hz, TOPICS["partner_face"], msg


def _ground_truth(motion: np.ndarray, rig: Rig,
                  cfg: RecordConfig) -> Iterator[tuple[float, str, Any]]:
    quats = rig.head_quaternion(motion)  # (T, 4)
    for k, (row, quat) in enumerate(zip(motion, quats)):
        t = cfg.start_s + k / FRAME_RATE_HZ
        yield t, TOPICS["gt_face"], bag_files.face_msg(row, rig.names, rig.name, t, "robot_face")
        yield t, TOPICS["gt_pose"], bag_files.pose_msg(quat, t, "robot_face")


def record_clip(data: str | Path, clip: str, out: str | Path,
                cfg: RecordConfig | None = None) -> dict[str, int]:
    """Write the bag of `clip`; returns {topic: message count}."""
    cfg = RecordConfig() if cfg is None else cfg
    loaded = load_clip(data, cfg.split, clip)
    rig = get_rig(loaded.rig)
    robot, partner = cfg.robot - 1, 2 - cfg.robot
    frames = loaded.frames
    if cfg.max_seconds is not None:
        frames = min(frames, int(round(cfg.max_seconds * FRAME_RATE_HZ)))
    n = frames * SAMPLES_PER_FRAME
    streams = [
        _audio_stream(TOPICS["self_audio"], loaded.audio[robot][:n], cfg, "robot_tts"),
        _audio_stream(TOPICS["partner_audio"], loaded.audio[partner][:n], cfg, "partner_mic"),
        _partner_faces(loaded.motion[partner][:frames], rig, cfg),
        _ground_truth(loaded.motion[robot][:frames], rig, cfg),
    ]
    counts = {topic: 0 for topic in TOPICS.values()}
    with bag_files.BagWriter(out, cfg.storage) as bag:
        for key, topic in TOPICS.items():
            bag.add(topic, bag_files.POSE if key == "gt_pose" else
                    bag_files.AUDIO if key.endswith("audio") else bag_files.FACE)
        # Written in log-time order, as a recorder would have received them.
        for log_s, topic, msg in heapq.merge(*streams, key=lambda item: item[0]):
            bag.write(topic, log_s, msg)
            counts[topic] += 1
    log.info("%s: %d frames (%.2f s) of %s, speaker%d as the robot", out, frames,
             frames / FRAME_RATE_HZ, clip, cfg.robot)
    return counts
