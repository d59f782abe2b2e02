"""The one message -> engine path of the node and the offline replay, on a real lite engine.

Messages are real types built by `rosbags` from the .msg files (dualtalk_msgs, and the test
copy of audio_common_msgs); the engine is the lite network (random weights: dispatch does not
depend on them). No ROS runtime needed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from dualtalk_core.streaming import StreamConfig, StreamingEngine
from dualtalk_ros.bag import bag_files
from dualtalk_ros.bridge.input_dispatch import InputDispatcher
from dualtalk_ros.bridge.node_settings import AudioCommonSettings

torch.set_num_threads(1)
AUDIO_COMMON = Path(__file__).parents[1] / "helpers" / "fixtures" / "audio_common_msgs" / "msg"


@pytest.fixture(scope="module")
def audio_common() -> dict:
    store = get_typestore(Stores.ROS2_KILTED)
    names = ("AudioData", "AudioDataStamped", "AudioInfo")
    for name in names:
        text = (AUDIO_COMMON / f"{name}.msg").read_text()
        store.register(get_types_from_msg(text, f"audio_common_msgs/msg/{name}"))
    return {name: store.types[f"audio_common_msgs/msg/{name}"] for name in names}


@pytest.fixture(scope="module")
def engine() -> StreamingEngine:
    return StreamingEngine.load("lite", StreamConfig(), device="cpu")


def _dispatcher(engine: StreamingEngine, skew_s: float = 5.0, **fmt) -> InputDispatcher:
    engine.reset()
    return InputDispatcher(engine, lambda: skew_s, AudioCommonSettings(**fmt))


def test_each_kind_reaches_its_own_engine_input(engine):
    dispatch = _dispatcher(engine)
    tone = (0.3 * np.sin(np.arange(1600) / 3.0)).astype(np.float32)
    assert dispatch.push("self_audio", bag_files.audio_msg(tone, 16000, 10.0, "tts"),
                         10.1, 10.1) == ("self_audio", 10.0)
    assert dispatch.push("partner_audio", bag_files.audio_msg(tone[:800], 16000, 10.0, "mic"),
                         10.1, 10.1) == ("partner_audio", 10.0)
    face = bag_files.face_msg([0.7], ["jawOpen"], "arkit52", 10.04, "tracker")
    assert dispatch.push("partner_face", face, 10.1, 10.1) == ("partner_face", 10.04)
    stats = engine.stats
    assert stats.self_audio.chunks == 1 and stats.partner_audio.chunks == 1
    assert stats.partner_face.faces == 1
    assert "jawOpen" not in stats.partner_face.missing_channels


def test_stamps_far_from_the_clock_are_refused_by_the_current_bound(engine):
    bound = {"s": 5.0}
    engine.reset()
    dispatch = InputDispatcher(engine, lambda: bound["s"])
    chunk = bag_files.audio_msg(np.zeros(512, np.float32), 16000, 20.0, "mic")
    with pytest.raises(ValueError, match=r"stamp future.*max_clock_skew_s = 5.0"):
        dispatch.push("partner_audio", chunk, 10.0, 10.0)
    bound["s"] = 15.0  # a live parameter change takes effect at the next message
    assert dispatch.push("partner_audio", chunk, 10.0, 10.0)[1] == 20.0
    with pytest.raises(ValueError, match="stamp past"):
        dispatch.push("self_audio", chunk, 40.0, 40.0)
    assert engine.stats.self_audio.chunks == 0


def test_audio_common_bytes_take_their_format_from_the_settings(engine, audio_common):
    dispatch = _dispatcher(engine, sample_rate=8000, channels=2, encoding="F32LE")
    stereo = np.stack([np.full(400, 0.25, np.float32), np.full(400, 0.75, np.float32)], axis=1)
    data = np.frombuffer(stereo.astype("<f4").tobytes(), np.uint8)
    raw = audio_common["AudioData"](data=data)  # bytes, no stamp, no format
    kind, t = dispatch.push("partner_audio_raw", raw, 30.0, 30.0)
    assert kind == "partner_audio" and t == pytest.approx(30.0 - 400 / 8000)  # ends on arrival
    header = bag_files.pose_msg(np.array([0, 0, 0, 1.0]), 29.0, "mic").header
    stamped = audio_common["AudioDataStamped"](header=header, audio=raw)
    assert dispatch.push("self_audio_raw", stamped, 30.0, 30.0) == ("self_audio", 29.0)
    assert engine.stats.partner_audio.resampled_chunks == 1
    odd = audio_common["AudioData"](data=np.zeros(7, np.uint8))
    with pytest.raises(ValueError, match="whole number"):
        dispatch.push("self_audio_raw", odd, 30.0, 30.0)


def test_audio_info_sets_the_format_of_its_own_voice_only(engine, audio_common):
    dispatch = _dispatcher(engine)  # parameters: 16 kHz mono S16LE
    info = audio_common["AudioInfo"]
    assert dispatch.push("partner_audio_info", info(
        channels=2, sample_rate=8000, sample_format="f32le", bitrate=0,
        coding_format="WAVE"), 30.0, 30.0) == ("partner_audio_info", 30.0)
    stereo = np.full((400, 2), 0.5, np.float32)
    raw = audio_common["AudioData"](data=np.frombuffer(stereo.tobytes(), np.uint8))
    kind, t = dispatch.push("partner_audio_raw", raw, 30.0, 30.0)
    assert t == pytest.approx(30.0 - 400 / 8000)  # 400 stereo float frames at 8 kHz
    # the own voice still takes the parameters' format: the same 3200 bytes are 1600 S16
    # samples at 16 kHz
    assert dispatch.push("self_audio_raw", raw, 31.0, 31.0)[1] == pytest.approx(31.0 - 0.1)
    for bad, match in ((dict(coding_format="mp3"), "uncompressed"),
                       (dict(sample_format="U8"), "encoding"),
                       (dict(sample_rate=1), "sample_rate"),
                       (dict(channels=0), "channels")):
        fields = dict(channels=1, sample_rate=16000, sample_format="S16LE", bitrate=0,
                      coding_format="wave") | bad
        with pytest.raises(ValueError, match=match):
            dispatch.push("self_audio_info", info(**fields), 30.0, 30.0)


def test_unknown_kinds_and_malformed_faces_raise_value_errors(engine):
    dispatch = _dispatcher(engine)
    with pytest.raises(ValueError, match="unknown input kind"):
        dispatch.push("partner_video", object(), 1.0, 1.0)
    face = bag_files.face_msg([0.1, 0.2], ["jawOpen", "mouthSmileLeft"], "arkit52", 1.0, "t")
    face.values = np.array([0.1], np.float32)
    with pytest.raises(ValueError, match="names but"):
        dispatch.push("partner_face", face, 1.0, 1.0)
