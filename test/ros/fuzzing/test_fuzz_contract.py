"""The fuzzer's input contract and its hostile messages agree: each bad kind is what its name
says, and the boundaries of the contract sit where issue 24 puts them."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_ros.fuzzing import hostile_messages as hostile
from dualtalk_ros.fuzzing.input_contract import invalid_reason

NOW = 1_800_000_000.0
EITHER = {"random_byte_count", "random_bytes_f32"}  # random content: valid or not by draw


def planned_by_label() -> dict[str, list[hostile.Planned]]:
    """Two draws of every bad kind, built the way a run builds them."""
    rng = np.random.default_rng(1)
    conversation = hostile.Conversation(rng, NOW - 10.0)
    bad = hostile.Hostile(rng, 100.0, raw=False)
    out: dict[str, list[hostile.Planned]] = {}
    for kind, label, build in bad.builders * 2:
        out.setdefault(label, []).append(hostile.Planned(kind, label,
                                                         build(rng, NOW, conversation)))
    return out


def test_every_bad_kind_is_rejected_and_every_valid_one_taken() -> None:
    planned = planned_by_label()
    assert len(planned) >= 40  # every kind of issue 24's list, audio and face
    for label, messages in planned.items():
        reasons = {invalid_reason(p.kind, p.msg, NOW) for p in messages}
        if label in EITHER:
            continue
        if label.endswith("_valid"):
            assert reasons == {None}, label
        else:
            assert None not in reasons, label


def test_the_valid_conversation_is_valid() -> None:
    rng = np.random.default_rng(2)
    conversation = hostile.Conversation(rng, NOW)
    planned = conversation.due(NOW + 25.0, 0.0)  # ARKit and FLAME segments, both voices
    assert {p.kind for p in planned} == {"self_audio", "partner_audio", "partner_face"}
    assert {p.msg.rig for p in planned if p.kind == "partner_face"} == {"arkit52", "flame56"}
    assert [invalid_reason(p.kind, p.msg, p.msg.header.stamp.sec + 0.5) for p in planned] \
        == [None] * len(planned)
    for kind in hostile.AUDIO_KINDS:  # a continuous timeline of 20-40 ms chunks
        chunks = [p.msg for p in planned if p.kind == kind]
        starts = np.array([c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in chunks])
        lengths = np.array([len(c.data) // 2 / 16000 for c in chunks])
        assert np.allclose(starts[1:], starts[:-1] + lengths[:-1], atol=1e-6)
        assert 0.02 <= lengths.min() and lengths.max() <= 0.04


def audio(n: int, rate: int = 16000, t: float = NOW, encoding: str = "S16LE",
          values: float = 0.1) -> hostile.AudioChunk:
    dtype = "<f4" if encoding == "F32LE" else "<i2"
    return hostile.chunk(np.full(n, values, dtype).tobytes(), t, rate, encoding)


@pytest.mark.parametrize("msg, reason", [
    (audio(480, 8000), None),
    (audio(480, 7999), "audio_rate_range"),
    (audio(480, 768000), None),
    (audio(480, 44100), None),  # 441/160
    (audio(480, 767999), "audio_rate_ratio"),
    (audio(480, 16001), "audio_rate_ratio"),  # 16001/16000
    (audio(32000), None),  # exactly 2 s
    (audio(32001), "audio_too_long"),
    (audio(480, encoding="F32LE", values=4.0), None),
    (audio(480, encoding="F32LE", values=4.5), "audio_out_of_range"),
    (audio(480, t=NOW + 4.9), None),
    (audio(480, t=NOW - 5.1), "stamp_skew"),
])
def test_audio_boundaries(msg: hostile.AudioChunk, reason: str | None) -> None:
    assert invalid_reason("self_audio", msg, NOW) == reason


@pytest.mark.parametrize("n, value, reason", [
    (1024, 10.0, None),
    (1025, 0.0, "face_too_many_names"),
    (3, 10.01, "face_out_of_range"),
    (3, -10.01, "face_out_of_range"),
])
def test_face_boundaries(n: int, value: float, reason: str | None) -> None:
    msg = hostile.face([f"n{i}" for i in range(n)], np.full(n, value), NOW)
    assert invalid_reason("partner_face", msg, NOW) == reason
