"""The nodes' settings: one typed dataclass per parameter group, the one place defaults live.

Each field is a ROS parameter of the same dotted name (`stream.smoothing.beta`), declared by the
node with this description, range and read-only flag; `config/dualtalk.yaml` is generated from
these classes (`python -m dualtalk_ros.bridge.param_schema --write`) and a test fails when the
two disagree. The streaming engine's own settings are `dualtalk_core.streaming.StreamConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass

from dualtalk_core.audio.pcm import ENCODINGS, MAX_RATE_HZ
from dualtalk_core.config_fields import check_settings, setting, setting_group
from dualtalk_core.model.devices import DEVICES
from dualtalk_core.rigs import RIGS
from dualtalk_core.streaming import StreamConfig

PCM_ENCODINGS = tuple(ENCODINGS)


@dataclass
class AudioCommonSettings:
    """The format of `audio_common_msgs/AudioData` inputs, which carry none of their own."""

    enabled: bool = setting(
        True, "Subscribe to self_voice and partner_voice (audio_common_msgs/AudioData, and "
        "AudioDataStamped on *_stamped) when audio_common_msgs is installed.")
    sample_rate: int = setting(16000, "Sample rate of those inputs (Hz).",
                               min_value=1000, max_value=MAX_RATE_HZ)
    channels: int = setting(1, "Interleaved channels of those inputs (averaged to mono).",
                            min_value=1, max_value=32)
    encoding: str = setting("S16LE", "Sample format of those inputs.", choices=PCM_ENCODINGS)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class InputSettings:
    """How the node receives its inputs."""

    max_clock_skew_s: float = setting(
        5.0, "Input stamps further than this from the node's clock are dropped and counted "
        "(a source with a wrong clock would otherwise stall or flood the stream).",
        min_value=0.1, max_value=3600.0, live=True)
    queue_messages: int = setting(
        400, "Bound of the receive queue (about 4 s of three input streams); when inference "
        "falls behind, the oldest message is dropped and counted.",
        min_value=10, max_value=100_000, live=True)
    audio_common: AudioCommonSettings = setting_group(
        AudioCommonSettings, "audio_common_msgs inputs (the ROS4HRI voice format).")

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class OutputSettings:
    """When computed frames are published."""

    delay_ms: float = setting(
        -1.0, "Each frame is published at its stamp + this delay on the node's clock: a steady "
        "25 fps stream, and the node's pipeline delay (published on pipeline_delay: play the "
        "robot's own voice this much after publishing it). < 0 = derived: lookahead + an "
        "input chunk + a model run + margin at start, then the larger of the measured 99th "
        "percentile of frame latency and lookahead + the inputs' arrival lateness + a model "
        "run, + margin: raised at once when frames would be late, lowered by at most 2 ms a "
        "second; audio still missing at a frame's deadline is taken as silence. 0 publishes "
        "each frame as soon as computed.",
        min_value=-1.0, max_value=5000.0, live=True)
    delay_margin_ms: float = setting(
        10.0, "Margin a derived delay keeps above the measured latency (ms).",
        min_value=0.0, max_value=1000.0, live=True)
    pacing_period_ms: float = setting(5.0, "How often frames due for publishing are checked.",
                                      min_value=1.0, max_value=100.0)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class DiagnosticsSettings:
    """The /diagnostics report and its thresholds."""

    period_s: float = setting(1.0, "Period of the /diagnostics report (s).",
                              min_value=0.1, max_value=60.0)
    input_stale_s: float = setting(
        1.0, "An input older than this is reported (WARN); with no audio at all the face "
        "starts from silence after this long.", min_value=0.1, max_value=3600.0, live=True)
    inference_warn_ratio: float = setting(
        0.5, "Inference time per hop / hop time above this: WARN.",
        min_value=0.01, max_value=100.0, live=True)
    inference_error_ratio: float = setting(
        1.0, "Inference time per hop / hop time above this: ERROR (hops are being skipped).",
        min_value=0.01, max_value=100.0, live=True)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.inference_warn_ratio > self.inference_error_ratio:
            raise ValueError(f"DiagnosticsSettings.inference_warn_ratio "
                             f"({self.inference_warn_ratio}) must not exceed "
                             f"inference_error_ratio ({self.inference_error_ratio})")


@dataclass
class RobotOutputSettings:
    """Outputs a robot and its tools take besides blendshapes: joints, TF, a marker."""

    joint_map: str = setting(
        "neck_jaw", "Retargeting map (YAML, docs/retargeting.md) from face frames to "
        "sensor_msgs/JointState on joint_states: a file path, or the name of a packaged map "
        "(config/retarget/<name>.yaml; 'neck_jaw' = a generic 3-DoF neck + jaw head); '' = no "
        "joint output.")
    tf_parent_frame: str = setting(
        "head_base", "Parent frame of the head-pose TF transform (parent -> frame_id, rotation "
        "only), published on /tf when tf2_msgs is installed; '' = no TF.", live=True)
    marker: bool = setting(
        True, "Publish the head pose as a visualization_msgs/Marker (an arrow along the gaze) on "
        "face_marker, in tf_parent_frame (frame_id when that is '').", live=True)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class DualTalkNodeSettings:
    """`dualtalk_node`: model, device, streaming engine, inputs, output, diagnostics."""

    model: str = setting(
        "", "Model folder (model.safetensors + config.json) or a published DualTalk.pth; "
        "'' = the shipped default model; 'lite' or 'official' = random weights (tests and "
        "timing only). A change while running loads and warms the new model in the "
        "background, then swaps it in; one that fails to load is reported and the old one "
        "kept.", live=True)
    autostart: bool = setting(
        True, "Configure and activate at start, as a plain node. false: start 'unconfigured' "
        "and wait for a lifecycle manager (configure loads the model, activate starts the "
        "inputs and outputs).")
    device: str = setting("auto", "Inference device: auto (CUDA when available), cpu or cuda.",
                          choices=DEVICES)
    torch_threads: int = setting(
        1, "CPU intra-op threads of the model; 0 = torch's default (one per core). 1 avoids "
        "oversubscribing cores shared with the node's own threads.",
        min_value=0, max_value=256)
    rig: str = setting("", "Expected output rig; '' = the model's own; a mismatch is an error.",
                       choices=("",) + tuple(RIGS))
    frame_id: str = setting("robot_face", "header.frame_id of the published face and head pose.",
                            live=True)
    stream: StreamConfig = setting_group(StreamConfig, "The streaming engine.")
    inputs: InputSettings = setting_group(InputSettings, "Input handling.")
    output: OutputSettings = setting_group(OutputSettings, "Output pacing.")
    robot: RobotOutputSettings = setting_group(
        RobotOutputSettings, "Joint states, TF and marker outputs.")
    diagnostics: DiagnosticsSettings = setting_group(DiagnosticsSettings, "/diagnostics.")

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class MicSettings:
    """`mic_node`: PortAudio capture published as AudioChunk."""

    device: str = setting("", "PortAudio input device: name substring or index; '' = the "
                          "system default.")
    sample_rate: int = setting(16000, "Capture rate (Hz); nothing is resampled here: DualTalk "
                               "accepts any rate.", min_value=1000, max_value=MAX_RATE_HZ)
    channels: int = setting(1, "Interleaved channels captured and published.",
                            min_value=1, max_value=32)
    chunk_samples: int = setting(512, "Samples per channel in one AudioChunk (512 at 16 kHz "
                                 "= 32 ms).", min_value=16, max_value=65536)
    encoding: str = setting("S16LE", "Published sample format.", choices=PCM_ENCODINGS)
    frame_id: str = setting("mic", "header.frame_id naming this source.")
    queue_chunks: int = setting(64, "Chunks buffered between the audio thread and the "
                                "publisher before dropping (2 s at 32 ms).",
                                min_value=1, max_value=10_000)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class RendererSettings:
    """`avatar_renderer`: the project's procedural head drawn to sensor_msgs/Image."""

    width: int = setting(512, "Image width (pixels).", min_value=16, max_value=4096)
    height: int = setting(512, "Image height (pixels).", min_value=16, max_value=4096)
    rate_hz: float = setting(25.0, "Images published per second (the face stream is 25 fps).",
                             min_value=0.1, max_value=120.0)
    style: str = setting("robot", "Colour scheme.", choices=("robot", "partner"))
    frame_id: str = setting("avatar_camera", "header.frame_id of the published images.")

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class TtsPlayerSettings:
    """`tts_player`: the robot's own speech published to the face and played in sync with it."""

    wav: str = setting("", "WAV file of the robot's speech (any rate; '' = nothing to say).")
    chunk_samples: int = setting(512, "Samples (16 kHz) per published AudioChunk.",
                                 min_value=16, max_value=16000)
    play: bool = setting(True, "Play the audio on the output device (false: publish and time "
                         "only, e.g. without a sound card).")
    output_device: str = setting("", "PortAudio output device: name substring or index; '' = "
                                 "the system default.")
    output_latency_ms: float = setting(
        0.0, "The output device's own latency, subtracted from the wait before playing "
        "(ms; PortAudio's reported latency is added to it when playing).",
        min_value=0.0, max_value=1000.0)
    idle_silence: bool = setting(
        True, "Keep publishing silence when not speaking, as a sound card's output stream does: "
        "the face then never waits for audio that will not come (a stream that stops makes the "
        "frames after its end wait input_timeout_ms).")
    ahead_s: float = setting(
        0.0, "Publish speech up to this far ahead of its stamps, as a TTS that synthesises "
        "ahead can (0 = as it is handed over). Stamps and playback time stay the same; the face "
        "has the audio before it needs it. Keep it below the face node's "
        "inputs.max_clock_skew_s. Speech gets ahead at 4x real time (4 chunks a tick).",
        min_value=0.0, max_value=4.0)
    subscribers: int = setting(
        1, "Subscribers of self_audio to wait for before speaking: the face node, plus any "
        "recorder that must hear the speech from its first sample (speech published before a "
        "subscription matches is lost to it).", min_value=0, max_value=100)
    wait_for_delay_s: float = setting(
        5.0, "How long to wait for the face's pipeline_delay and the subscribers before "
        "speaking anyway (s).", min_value=0.0, max_value=600.0)

    def __post_init__(self) -> None:
        check_settings(self)


# Node name -> its settings class; `config/dualtalk.yaml` has one section per entry.
NODE_SETTINGS: dict[str, type] = {
    "mic_node": MicSettings,
    "dualtalk_node": DualTalkNodeSettings,
    "avatar_renderer": RendererSettings,
    "tts_player": TtsPlayerSettings,
}
