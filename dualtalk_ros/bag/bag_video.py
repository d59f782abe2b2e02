"""`dualtalk-render`: a conversation as an MP4, both faces side by side with both voices.

    dualtalk-render --bag conversation_bag --bag eval_out/output_bag --out demo.mp4
    dualtalk-render --data corpus --split test --clip syn_test_00000 --out clip.mp4

From bags, topics are looked up across every `--bag` given (a recorded conversation and the
evaluation's output bag together): the left face (default `/face`, the robot's prediction;
head pose from `/head_pose` when present), the right face (`/partner_face`) and the two voices
(`/self_audio`, `/partner_audio`). Faces are sampled on a 25 fps grid holding the latest frame at
or before each grid time; audio chunks are placed by their stamps. A message the node would
refuse (malformed, NaN) is skipped with a warning naming its topic and stamp. From a corpus clip,
both speakers' ground truth is drawn.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from dualtalk_core import rigs
from dualtalk_core.audio.pcm import to_mono_float32
from dualtalk_core.audio.resampling import resample_to_16k
from dualtalk_core.render.face_renderer import FaceRenderer
from dualtalk_core.render.video import write_conversation_video
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from dualtalk_ros.bag import bag_files
from dualtalk_ros.bridge import messages

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bag", action="append", type=Path, default=[], help="bag(s) to read")
    ap.add_argument("--data", type=Path, help="corpus folder (instead of --bag)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clip", help="corpus clip id")
    ap.add_argument("--out", type=Path, required=True, help="MP4 to write")
    ap.add_argument("--left-topic", default="/face")
    ap.add_argument("--left-pose-topic", default="/head_pose")
    ap.add_argument("--right-topic", default="/partner_face")
    ap.add_argument("--left-audio-topic", default="/self_audio")
    ap.add_argument("--right-audio-topic", default="/partner_audio")
    ap.add_argument("--labels", nargs=2, default=["Robot (DualTalk)", "Partner"])
    ap.add_argument("--size", type=int, default=384, help="pixels per face (square)")
    ap.add_argument("--max-seconds", type=float, default=None)
    return ap


def _find(bags: list[Path], topic: str, msgtype: str, required: bool = True) -> Any:
    other = ""
    for bag in bags:
        found = bag_files.bag_topics(bag).get(topic)
        if found == msgtype:
            return bag_files.read_topics(bag, {topic: msgtype})[topic]
        if found is not None:
            other = f" ({bag} has it as {found})"
    if required:
        raise bag_files.BagTopicError(f"no {msgtype} topic {topic} in "
                                      f"{[str(b) for b in bags]}{other}")
    return None


def _usable(msgs: list[Any], parse: Callable[[Any], Any], topic: str) -> list[Any]:
    """parse(msg) of every message it accepts; the others are skipped with a warning."""
    out = []
    for msg in msgs:
        try:
            out.append(parse(msg))
        except ValueError as exc:
            log.warning("%s: bad message stamped %.3f s skipped: %s", topic,
                        messages.stamp_to_s(msg.header.stamp), exc)
    return out


def place_audio(msgs: list[Any], t0: float, n_samples: int,
                topic: str = "audio") -> np.ndarray:
    """AudioChunks -> one 16 kHz track starting at t0 (chunks placed by their stamps)."""
    track = np.zeros(n_samples, np.float32)
    for samples, rate, t in _usable(msgs, messages.audio_chunk, topic):
        mono = resample_to_16k(to_mono_float32(samples), rate)
        start = int(round((t - t0) * SAMPLE_RATE_HZ))
        lo, hi = max(start, 0), min(start + len(mono), n_samples)
        if hi > lo:
            track[lo:hi] = mono[lo - start:hi - start]
    return track


def sample_faces(msgs: list[Any], grid: np.ndarray, rig: rigs.Rig,
                 poses: list[Any] | None = None, topic: str = "face") -> np.ndarray:
    """Faces (any rig spelling) held on the grid -> (len(grid), rig.dim); neutral before any."""
    def parse(msg: Any) -> tuple[float, np.ndarray]:
        values, names, t = messages.face(msg)  # lengths and finiteness checked
        return t, rigs.to_rig_order(rig.name, names, values)[0]

    faces = _usable(msgs, parse, topic)
    if not faces:
        raise ValueError(f"{topic}: no usable FaceCoefficients message")
    stamps = np.array([t for t, _ in faces])
    rows = np.stack([row for _, row in faces])
    idx = np.searchsorted(stamps, grid + 1e-6, side="right") - 1
    out = np.where((idx >= 0)[:, None], rows[np.clip(idx, 0, None)], rig.neutral_array())
    if poses:
        from dualtalk_ros.nodes.avatar_renderer import pose_to_head_channels

        pose_t = np.array([messages.stamp_to_s(p.header.stamp) for p in poses])
        heads = np.stack([pose_to_head_channels(np.array(
            [p.pose.orientation.x, p.pose.orientation.y, p.pose.orientation.z,
             p.pose.orientation.w])) for p in poses])
        pidx = np.searchsorted(pose_t, grid + 1e-6, side="right") - 1
        have = pidx >= 0
        out[np.ix_(have, list(rig.groups["POSE"]))] = heads[pidx[have]]
    return out.astype(np.float32)


def from_bags(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """-> left faces (T, 55), right faces (T, 55), left audio, right audio on one clock."""
    rig = rigs.get_rig("arkit52")
    left = _find(args.bag, args.left_topic, bag_files.FACE)
    right = _find(args.bag, args.right_topic, bag_files.FACE)
    pose = _find(args.bag, args.left_pose_topic, bag_files.POSE, required=False)
    audio_l = _find(args.bag, args.left_audio_topic, bag_files.AUDIO)
    audio_r = _find(args.bag, args.right_audio_topic, bag_files.AUDIO)
    empty = [d.topic for d in (left, right, audio_l, audio_r) if not d.msgs]
    if empty:
        raise ValueError(f"no readable messages on {', '.join(empty)} in "
                         f"{[str(b) for b in args.bag]}")
    starts = [messages.stamp_to_s(d.msgs[0].header.stamp) for d in (audio_l, audio_r)]
    ends = [messages.stamp_to_s(d.msgs[-1].header.stamp) for d in (left, audio_l, audio_r)]
    t0, t1 = min(starts), max(ends)
    if args.max_seconds:
        t1 = min(t1, t0 + args.max_seconds)
    grid = t0 + np.arange(int((t1 - t0) * FRAME_RATE_HZ)) / FRAME_RATE_HZ
    n = len(grid) * SAMPLES_PER_FRAME
    return (sample_faces(left.msgs, grid, rig, pose.msgs if pose else None, left.topic),
            sample_faces(right.msgs, grid, rig, topic=right.topic),
            place_audio(audio_l.msgs, t0, n, audio_l.topic),
            place_audio(audio_r.msgs, t0, n, audio_r.topic))


def from_corpus(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
    from dualtalk_core.dataset.clips import load_clip

    clip = load_clip(args.data, args.split, args.clip)
    if clip.rig != "arkit52":
        raise ValueError(f"clip {args.clip} is in rig {clip.rig}; the avatar draws arkit52")
    frames = clip.frames
    if args.max_seconds:
        frames = min(frames, int(args.max_seconds * FRAME_RATE_HZ))
    return (clip.motion[0][:frames], clip.motion[1][:frames], clip.audio[0], clip.audio[1])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if bool(args.bag) == bool(args.data):
            raise ValueError("give either --bag (one or more) or --data/--split/--clip")
        if args.data and not args.clip:
            raise ValueError("--data needs --clip")
        left, right, audio_l, audio_r = from_bags(args) if args.bag else from_corpus(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"dualtalk-render: {exc}", file=sys.stderr)
        return 2
    with FaceRenderer(args.size, args.size, style="robot") as robot, \
            FaceRenderer(args.size, args.size, style="partner") as partner:
        frames_l = (robot.render(v) for v in tqdm(left, desc="render", unit="frame"))
        frames_r = (partner.render(v) for v in right)
        write_conversation_video(args.out, frames_l, frames_r, audio_l, audio_r, SAMPLE_RATE_HZ,
                                 FRAME_RATE_HZ, labels=args.labels, n_frames=len(left))
    print(f"wrote {args.out}: {len(left)} frames ({len(left) / FRAME_RATE_HZ:.1f} s) with audio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
