"""Everything a model brings to the node, built in one place: the streaming engine (loaded and
warmed up), the output pacer sized from its lookahead, the input dispatcher into it, and the
joint retargeter for its rig.

One builder serves the node's `configure` transition and a model swapped in while running: the
swap builds a complete pipeline in the background and the worker replaces the old one between
two steps, so nothing ever runs half old, half new. No rclpy here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from dualtalk_core.heap_tuning import tune_heap_for
from dualtalk_core.model import PRESETS
from dualtalk_core.retargeting import Retargeter, load_joint_map
from dualtalk_core.rigs import Rig
from dualtalk_core.streaming import StreamingEngine
from dualtalk_core.units import FRAME_MS
from dualtalk_ros.bridge.input_dispatch import InputDispatcher
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings, RobotOutputSettings
from dualtalk_ros.bridge.output_pacing import OutputPacer
from dualtalk_ros.bridge.share_files import share_path

# names StreamingEngine.load takes without a file: the shipped model and the presets
BUILTIN_MODELS = ("",) + tuple(PRESETS)


@dataclass
class FacePipeline:
    """One model's engine and what is sized from it; `model` is the parameter it came from."""

    model: str
    engine: StreamingEngine
    pacer: OutputPacer
    dispatch: InputDispatcher
    retarget: Retargeter | None

    @property
    def rig(self) -> Rig:
        return self.engine.rig


def model_problem(model: str) -> str | None:
    """Why `model` cannot be a model at all (checked before a swap starts), None if it may be.

    Only what is cheap: whether the file or folder exists. Loading finds the rest."""
    if model in BUILTIN_MODELS or Path(model).expanduser().exists():
        return None
    return f"model {model!r}: no such file or folder"


def build_pipeline(s: DualTalkNodeSettings,
                   max_clock_skew_s: Callable[[], float]) -> FacePipeline:
    """Load and warm up `s.model` and size the rest from it; ValueError/OSError on failure."""
    engine = StreamingEngine.load(s.model or None, s.stream, device=s.device)
    if s.rig and s.rig != engine.rig.name:
        raise ValueError(f"parameter rig={s.rig!r} but the model outputs {engine.rig.name!r}; "
                         f"set rig:='' or load a {s.rig} model")
    retarget = make_retargeter(s.robot, engine.rig.names)
    engine.warm_up()  # before the first report: a cold model would skip hops
    tune_heap_for(engine)  # a windowed run reuses ~10 MB of tensors a hop (heap_tuning)
    # Steps run when audio arrives, so a frame waits only for its batch of frames.
    # A frame needs audio up to its lookahead, and echo cancellation's frame on top.
    pacer = OutputPacer(s.output, engine.lookahead_ms + engine.input_wait_ms,
                        (engine.batch_frames - 1) * FRAME_MS, incremental=engine.incremental)
    engine.set_wait_cap(pacer.wait_cap_ms)  # each frame's deadline
    dispatch = InputDispatcher(engine, max_clock_skew_s, s.inputs.audio_common)
    return FacePipeline(s.model, engine, pacer, dispatch, retarget)


def make_retargeter(robot: RobotOutputSettings, rig_names: Sequence[str]) -> Retargeter | None:
    """The joint retargeter of `robot.joint_map` for a rig; None when joints are off."""
    if not robot.joint_map:
        return None
    return Retargeter(load_joint_map(joint_map_path(robot.joint_map), rig_names), rig_names)


def joint_map_path(name: str) -> Path:
    """A map's file: a path as given, or a packaged map's name (config/retarget/<name>.yaml)."""
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        if not path.is_file():
            raise ValueError(f"robot.joint_map: {name}: no such file")
        return path
    try:
        return share_path("dualtalk_ros", f"config/retarget/{name}.yaml")
    except FileNotFoundError:
        raise ValueError(f"robot.joint_map: {name!r} is neither a YAML file nor a packaged map "
                         "(config/retarget/<name>.yaml)") from None
