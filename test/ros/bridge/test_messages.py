"""Message fields <-> core arrays: stamps, audio chunks, faces, and what makes each invalid.

Real `dualtalk_msgs` types through `rosbags` (the bag tools' typestore): no ROS runtime needed.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from dualtalk_ros.bag import bag_files
from dualtalk_ros.bridge import messages


def test_stamps_round_trip_to_the_nanosecond():
    for t in (0.0, 1.5, 1234567.000000001, 99.999999999):
        sec, nanosec = messages.s_to_sec_nanosec(t)
        assert 0 <= nanosec < messages.NS
        assert abs(sec + nanosec * 1e-9 - t) <= 1e-9
    assert messages.s_to_sec_nanosec(2.9999999999) == (3, 0)  # rounds, never 1e9 nanoseconds


def test_audio_chunk_decodes_what_the_bag_writer_encoded():
    samples = np.sin(np.arange(512) / 7.0).astype(np.float32) * 0.5
    for encoding, tolerance in (("S16LE", 1 / 32768), ("F32LE", 0.0)):
        msg = bag_files.audio_msg(samples, 48000, 12.25, "mic", encoding)
        mono, rate, t = messages.audio_chunk(msg)
        assert rate == 48000 and t == 12.25
        np.testing.assert_allclose(mono, samples, atol=tolerance)


@pytest.mark.parametrize("field, value, match", [
    ("sample_rate", 0, "sample_rate"), ("channels", 0, "channels"), ("encoding", "U8", "U8"),
    ("data", np.zeros(0, np.uint8), "empty"), ("data", np.zeros(3, np.uint8), "3 bytes")])
def test_audio_chunk_errors_say_what_is_wrong(field, value, match):
    msg = bag_files.audio_msg(np.zeros(16, np.float32), 16000, 1.0, "mic")
    setattr(msg, field, value)
    with pytest.raises(ValueError, match=match):
        messages.audio_chunk(msg)


def test_face_parsing_checks_lengths_and_finiteness():
    msg = bag_files.face_msg(np.array([0.1, 0.2], np.float32), ["jawOpen", "eyeBlinkLeft"],
                             "arkit52", 3.0, "tracker")
    values, names, t = messages.face(msg)
    assert names == ["jawOpen", "eyeBlinkLeft"] and t == 3.0
    np.testing.assert_array_equal(values, np.array([0.1, 0.2], np.float32))
    msg.values = np.array([0.1], np.float32)
    with pytest.raises(ValueError, match="2 names but 1 values"):
        messages.face(msg)
    msg.values = np.array([0.1, math.nan], np.float32)
    with pytest.raises(ValueError, match="NaN"):
        messages.face(msg)
    msg.names, msg.values = [], np.zeros(0, np.float32)
    with pytest.raises(ValueError, match="no channels"):
        messages.face(msg)


def test_stamp_problem_names_the_kind():
    assert messages.stamp_problem(100.0, 100.0, 5.0) is None
    assert messages.stamp_problem(106.0, 100.0, 5.0) == "stamp_future"
    assert messages.stamp_problem(94.0, 100.0, 5.0) == "stamp_past"
    assert messages.stamp_problem(0.0, 100.0, 5.0) == "stamp_invalid"
    assert messages.stamp_problem(math.inf, 100.0, 5.0) == "stamp_invalid"


def test_oversized_serialized_messages_are_refused_before_deserializing():
    messages.check_audio_size(bytes(messages.MAX_AUDIO_MESSAGE_BYTES))
    with pytest.raises(ValueError, match="AudioChunk of 3145728 bytes"):
        messages.check_audio_size(bytes(3 << 20))
    messages.check_face_size(bytes(messages.MAX_FACE_MESSAGE_BYTES))
    with pytest.raises(ValueError, match="FaceCoefficients of 65537 bytes"):
        messages.check_face_size(bytes(messages.MAX_FACE_MESSAGE_BYTES + 1))
