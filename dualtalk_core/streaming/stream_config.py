"""The streaming engine's settings: one declaration per field, the ROS node's defaults included.

Each field's default, description, bounds and liveness are declared once with `setting()`; the
node's `stream.*` parameters, their descriptions and the generated parameters file read them
from here. Only `smoothing.*`, `input_timeout_ms` and `absent_after_ms` can change on a running
engine (`StreamingEngine.reconfigure`): the others size buffers, fix the frame schedule or (echo
cancellation, idle motion) a stream's state.
"""
from __future__ import annotations

from dataclasses import dataclass

from dualtalk_core.config_fields import check_settings, setting, setting_group
from dualtalk_core.streaming.smoothing import OneEuroConfig
from dualtalk_core.units import FRAME_MS


@dataclass
class StreamConfig:
    """Streaming engine settings (the ROS node's `stream.*` parameters, field for field)."""

    window_ms: float = setting(
        8000.0,
        "Input the model sees per run, ending at the newest frame's lookahead. 8000 is the lite "
        "model's training window (200 frames), so emitted frames see as much past as the last "
        "frames of a training window did.",
        min_value=40.0, max_value=60000.0)
    hop_ms: float = setting(
        40.0,
        "Time between windowed model runs, a multiple of the 40 ms frame: a frame waits up to "
        "hop_ms - 40 ms for its run on top of the lookahead, and a longer hop shares a run's "
        "cost among more frames (80-120 for the official network on a CPU). The incremental "
        "stepper (the default model) runs each frame as soon as its audio is in, whatever "
        "the hop.",
        min_value=40.0, max_value=2000.0)
    lookahead_ms: float = setting(
        -1.0,
        "How far past a frame's start its output may depend on audio; < 0 = the model's own "
        "bound (the default model: 40 ms). A bound below the model's is enforced by the "
        "engine, and the non-causal official model needs one (e.g. 400).",
        min_value=-1.0, max_value=2000.0)
    crossfade_ms: float = setting(
        80.0,
        "Frames after each seam between runs blended with the previous run's predictions of "
        "them; 0 = off. Window starts move every run, so runs disagree a little at the seam: "
        "blending 2 frames cut that jump by about 3x in a test.",
        min_value=0.0, max_value=1000.0)
    smoothing: OneEuroConfig = setting_group(
        OneEuroConfig,
        "One-Euro filter on the output frames: removes jitter while a channel is still and "
        "follows fast motion.")
    input_timeout_ms: float = setting(
        150.0,
        "The longest a frame waits past its need for late audio before taking it as silence: "
        "above the 32-100 ms chunks of microphones and TTS engines, below a visible stall. The "
        "node with a derived output delay waits less where the frame's deadline comes first "
        "(its delay covers the inputs' measured arrival lateness up to this).",
        min_value=0.0, max_value=10000.0, live=True)
    absent_after_ms: float = setting(
        500.0,
        "An audio input that has sent nothing for this long stops holding frames back: it is "
        "taken as silence as far as the other input has arrived, without waiting "
        "input_timeout_ms (a TTS publishes only while the robot speaks). Its next chunk "
        "starts a new segment.",
        min_value=0.0, max_value=60000.0, live=True)
    stamp_tolerance_ms: float = setting(
        10.0,
        "Stamp error absorbed as jitter (a quarter frame; at most half a frame). A larger jump "
        "inserts silence or trims the overlap to re-align.",
        min_value=0.0, max_value=20.0)
    stepper: str = setting(
        "auto",
        "How the model runs: 'incremental' computes each new frame once, carrying every "
        "layer's state (causal log-mel models with a bounded attention span; equals whole-clip "
        "inference); 'windowed' re-runs the model over window_ms every hop (any model); "
        "'auto' picks incremental where the model allows it.",
        choices=("auto", "incremental", "windowed"))
    echo_cancellation: bool = setting(
        False,
        "Remove the robot's own voice from the partner audio (WebRTC AEC3, the self audio as "
        "reference) for a microphone that hears the loudspeaker. Costs 10 ms of latency and "
        "damps the partner ~11 dB while both speak; see docs/echo_cancellation.md.")
    idle_motion: bool = setting(
        True,
        "Blinks and head sway sampled on top of the network's output from the model's "
        "idle_motion.json (fitted to the corpus: the motion the voices do not determine, so "
        "the face stays alive in silence). Off: the network's output alone; a model without "
        "the file has none.")
    idle_seed: int = setting(
        0,
        "Seed of the idle motion's random sequence, which starts again with each stream: the "
        "same input gives the same face. Robots side by side want different seeds.",
        min_value=0, max_value=999999)
    max_buffer_s: float = setting(
        30.0,
        "Input held per stream past what the next window needs. After a longer stall the "
        "engine skips ahead rather than catching up; memory is fixed by this bound.",
        min_value=1.0, max_value=600.0)

    def __post_init__(self) -> None:
        if self.lookahead_ms is None:  # library callers' spelling of "the model's bound"
            self.lookahead_ms = -1.0
        if isinstance(self.smoothing, dict):  # e.g. straight from a YAML mapping
            self.smoothing = OneEuroConfig(**self.smoothing)
        check_settings(self)
        if abs(self.hop_ms / FRAME_MS - round(self.hop_ms / FRAME_MS)) > 1e-6:
            raise ValueError(f"StreamConfig.hop_ms must be a multiple of 40 ms, got {self.hop_ms}")
        # Every lookahead is at least one frame (a frame needs its own audio).
        if self.window_ms < self.hop_ms + FRAME_MS:
            raise ValueError(
                f"StreamConfig.window_ms={self.window_ms} must be >= hop_ms + 40 ms (a hop of "
                f"frames and their lookahead), got hop_ms={self.hop_ms}")
