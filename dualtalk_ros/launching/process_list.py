"""The processes of a DualTalk robot face, described once for both launchers.

`launch/dualtalk.launch.py` (robots with ROS 2 launch) and `dualtalk-run` (machines without it)
both build their processes from `processes()`, so they start the same nodes with the same
parameters file, namespace and remappings.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from dualtalk_ros.bridge.share_files import params_file as config_path


@dataclass(frozen=True)
class Options:
    """What a user chooses when starting the face (launch arguments / runner flags)."""

    params_file: str = ""  # "" = the package's config/dualtalk.yaml
    namespace: str = ""
    use_mic: bool = True  # mic_node captures the partner's voice
    use_renderer: bool = True  # avatar_renderer draws the robot's face to an Image topic
    use_sim_time: bool = False
    # dualtalk_node's topics, each remapped to the value given (NODE_TOPICS)
    self_audio: str = "self_audio"  # the robot's own voice (e.g. its TTS output)
    partner_audio: str = "partner_audio"  # the human's voice
    partner_face: str = "partner_face"  # the human's face (FaceCoefficients, from a tracker)
    # audio_common_msgs voices (ROS4HRI /humans/voices/<id>/audio), when that package is installed
    self_voice: str = "self_voice"  # AudioData
    partner_voice: str = "partner_voice"
    self_voice_stamped: str = "self_voice_stamped"  # AudioDataStamped
    partner_voice_stamped: str = "partner_voice_stamped"
    self_voice_info: str = "self_voice_info"  # AudioInfo: the format of the voice's bytes
    partner_voice_info: str = "partner_voice_info"
    face: str = "face"  # outputs
    head_pose: str = "head_pose"
    joint_states: str = "joint_states"  # the retargeted joints (robot.joint_map)
    face_marker: str = "face_marker"


# Every topic of dualtalk_node an Options field of the same name remaps: all its inputs and
# the outputs the renderer reads.
NODE_TOPICS = ("self_audio", "partner_audio", "partner_face", "self_voice", "partner_voice",
               "self_voice_stamped", "partner_voice_stamped", "self_voice_info",
               "partner_voice_info", "face", "head_pose", "joint_states", "face_marker")


@dataclass(frozen=True)
class Process:
    package: str
    executable: str  # console script in lib/<package> (ros2 run / launch_ros)
    module: str  # python -m entry (dualtalk-run)
    name: str
    remappings: tuple[tuple[str, str], ...] = field(default=())


def processes(opts: Options) -> list[Process]:
    dualtalk = Process("dualtalk_ros", "dualtalk_node", "dualtalk_ros.nodes.dualtalk_node",
                       "dualtalk_node", tuple((t, getattr(opts, t)) for t in NODE_TOPICS))
    procs = [dualtalk]
    if opts.use_mic:
        procs.append(Process("dualtalk_ros", "mic_node", "dualtalk_ros.nodes.mic_node", "mic_node",
                             (("audio", opts.partner_audio),)))
    if opts.use_renderer:
        procs.append(Process("dualtalk_ros", "avatar_renderer",
                             "dualtalk_ros.nodes.avatar_renderer", "avatar_renderer",
                             (("face", opts.face), ("head_pose", opts.head_pose))))
    return procs


def params_file(opts: Options) -> str:
    return opts.params_file or str(config_path())


def command(proc: Process, opts: Options) -> list[str]:
    """`python -m <module> --ros-args ...` with the same settings launch_ros would pass."""
    args = [sys.executable, "-m", proc.module, "--ros-args", "-r", f"__node:={proc.name}",
            "--params-file", str(Path(params_file(opts))),
            "-p", f"use_sim_time:={str(opts.use_sim_time).lower()}"]
    if opts.namespace:
        args += ["-r", f"__ns:={opts.namespace}"]
    for src, dst in proc.remappings:
        args += ["-r", f"{src}:={dst}"]
    return args
