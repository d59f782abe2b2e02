"""Launch the DualTalk face: dualtalk_node, mic_node (partner voice) and avatar_renderer.

    ros2 launch dualtalk_ros dualtalk.launch.py namespace:=robot1 use_mic:=false \
        self_audio:=/tts/audio partner_face:=/face_tracker/partner_coefficients \
        partner_voice:=/humans/voices/anonymous_speaker/audio

Arguments: the fields of process_list.Options, one per input topic of dualtalk_node (self_audio,
partner_audio, partner_face and the audio_common voices `{self,partner}_voice`,
`*_voice_stamped`, `*_voice_info`), the output topics face and head_pose, and params_file,
namespace, use_mic, use_renderer, use_sim_time. Every argument has the same meaning in
`dualtalk-run` (machines without ROS 2 launch): both are built from
dualtalk_ros.launching.process_list, and node parameters come from the params file only.
"""
from dataclasses import fields

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from dualtalk_ros.launching.process_list import Options, params_file, processes


def _nodes(context):
    values = {}
    for f in fields(Options):
        raw = context.launch_configurations[f.name]
        values[f.name] = raw.lower() in ("1", "true", "yes") if isinstance(f.default, bool) \
            else raw
    opts = Options(**values)
    return [Node(package=p.package, executable=p.executable, name=p.name,
                 namespace=opts.namespace or None, output="screen",
                 parameters=[params_file(opts), {"use_sim_time": opts.use_sim_time}],
                 remappings=list(p.remappings))
            for p in processes(opts)]


def generate_launch_description():
    args = [DeclareLaunchArgument(f.name, default_value=str(f.default).lower()
                                  if isinstance(f.default, bool) else str(f.default))
            for f in fields(Options)]
    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])
