"""The engine's inputs on one grid: the anchor, a face held before any audio, partner names."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core import rigs
from dualtalk_core.streaming.input_tracks import InputTracks

RIG = rigs.get_rig("arkit52")
JAW = RIG.names.index("jawOpen")


def _tracks() -> InputTracks:
    return InputTracks(RIG, capacity_samples=16000 * 5, tolerance_ms=10.0)


def _face(names: list[str], value: float) -> tuple[np.ndarray, rigs.ChannelMap]:
    return rigs.to_rig_order(RIG.name, names, np.full(len(names), value))


def test_first_chunk_of_either_speaker_anchors_both():
    tracks = _tracks()
    assert tracks.t0 is None and tracks.available() == 0
    tracks.push_audio(1, np.ones(1600, np.float32), 16000, 100.0)  # the partner speaks first
    tracks.push_audio(0, np.ones(800, np.float32), 16000, 100.05)  # 50 ms later
    assert tracks.t0 == 100.0
    assert (tracks.self_audio.head, tracks.partner_audio.head) == (1600, 1600)
    own, other = tracks.read_audio(0, 1600)  # own audio before its first chunk is silence
    assert own[:800].max() == 0.0 and own[800:].min() == 1.0 and other.min() == 1.0
    assert tracks.self_audio.stats.gaps_filled == 1 and tracks.available() == 1600
    tracks.anchor(50.0)  # anchored already: no effect
    assert tracks.t0 == 100.0


def test_face_before_any_audio_is_held_from_frame_zero():
    tracks = _tracks()
    tracks.push_face(*_face(["jawOpen"], 0.7), t=3.0, emitted=0)
    assert tracks.face_stats.faces == 1 and tracks.t0 is None
    tracks.anchor(10.0)
    tracks.push_face(*_face(["jawOpen"], 0.2), t=10.08, emitted=0)  # frame 2
    window = tracks.read_faces(0, 4)  # (4, C)
    np.testing.assert_allclose(window[:, JAW], [0.7, 0.7, 0.2, 0.2], atol=1e-6)
    assert [tracks.has_face(k) for k in range(4)] == [False, False, True, False]
    tracks.push_face(*_face(["jawOpen"], 0.5), t=10.12, emitted=5)  # its frame is out
    assert tracks.face_stats.late_faces == 1 and tracks.face_stats.faces == 3


def test_unknown_names_accumulate_and_missing_channels_follow_the_latest_face(caplog):
    tracks = _tracks()
    tracks.anchor(0.0)
    tracks.push_face(*_face(["JawOpen", "Smirk"], 0.5), t=0.0, emitted=0)
    stats = tracks.face_stats
    assert stats.unknown_names == ("Smirk",) and len(stats.missing_channels) == RIG.dim - 1
    warnings = len(caplog.records)
    assert warnings == 1 and "Smirk" in caplog.text
    tracks.push_face(*_face(["JawOpen", "Smirk"], 0.5), t=0.04, emitted=0)
    assert len(caplog.records) == warnings  # nothing new: no second warning
    tracks.push_face(*_face(list(RIG.names) + ["Frown"], 0.1), t=0.08, emitted=0)
    assert stats.unknown_names == ("Frown", "Smirk") and stats.missing_channels == ()


def test_overdue_fill_end_restart_and_reset():
    tracks = _tracks()
    tracks.push_audio(0, np.ones(1000, np.float32), 16000, 0.0)
    tracks.fill_overdue(640)  # only the partner is behind 640: it gets silence
    assert (tracks.self_audio.head, tracks.partner_audio.head) == (1000, 640)
    tracks.end(emitted=0)  # the shorter input is padded to the longer one
    assert tracks.available() == 1000 and tracks.partner_audio.stats.gaps_filled == 1
    tracks.push_face(*_face(["jawOpen"], 0.9), t=0.0, emitted=0)
    tracks.restart_at(6400)  # a stall skip: inputs continue at frame 10, counters kept
    assert tracks.available() == 6400 and tracks.self_audio.stats.chunks == 1
    assert tracks.read_faces(10, 1)[0, JAW] == pytest.approx(0.9)  # the newest face held
    tracks.reset()
    assert tracks.t0 is None and tracks.self_audio.stats.chunks == 0
    assert tracks.face_stats.faces == 0 and tracks.available() == 0


def test_frames_that_waited_for_audio_are_told_apart_from_frames_that_did_not():
    """A pacer measures the pipeline on frames that did not wait input_timeout_ms; silence for an
    overdue input or for one that resumed after a pause is waiting, silence for an absent input
    is not."""
    tracks = _tracks()
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 0.0)
    tracks.push_audio(1, np.ones(1600, np.float32), 16000, 0.0)
    assert not tracks.waited(1600)
    tracks.fill_overdue(3200)  # both inputs late: silence to 3200
    assert tracks.waited(3200) and tracks.waited(2000) and not tracks.waited(1600)
    tracks.push_audio(1, np.ones(1600, np.float32), 16000, 0.2)  # the partner goes on
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 0.3)  # own audio resumes later
    assert tracks.self_audio.head == 6400  # silence [3200, 4800) for the pause, then audio
    assert tracks.waited(4800) and not tracks.waited(6400)  # the last needed sample decides
    tracks.push_audio(0, np.ones(8000, np.float32), 16000, 0.4)
    tracks.fill_absent(absent_before=12000, now=14400)  # the partner went quiet: not waiting
    assert tracks.partner_audio.head == 14400 and not tracks.waited(14400)


def test_speech_published_ahead_of_time_made_no_frame_wait():
    """A TTS that publishes ahead stamps its speech in the future: the silence before it is
    written at once, but no frame was held back by it (the partner had not got there yet)."""
    tracks = _tracks()
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 0.0)
    tracks.push_audio(1, np.ones(1600, np.float32), 16000, 0.0)
    # speech stamped 0.5 s, received at 0.1 s: the silence before it lies ahead of its arrival;
    # a jump that far is held until the next chunk of its burst confirms it
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 0.5, received_s=0.1)
    assert tracks.self_audio.stats.held_chunks == 1 and tracks.self_audio.head == 1600
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 0.6, received_s=0.1)
    assert tracks.self_audio.stats.held_chunks == 0 and tracks.self_audio.stats.chunks == 3
    assert tracks.self_audio.head == 11200 and tracks.self_audio.stats.gaps_filled == 1
    tracks.push_audio(1, np.ones(8000, np.float32), 16000, 0.1)  # the microphone catches up
    assert tracks.available() == 9600 and not any(tracks.waited(n) for n in (3200, 8000, 9600))
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 1.0, received_s=1.0)  # paused, live
    tracks.release_due(1.0, emitted=0)  # stamped at its arrival: the clock confirms it
    assert tracks.waited(16000) and not tracks.waited(11200)


def test_arrival_lateness_counts_chunks_that_continue_received_audio():
    """What a pacer sizes its deadline from: how long after its first sample each chunk of a
    continuous stream arrives. A chunk after a hole, a stall's backlog or the stream's first
    second says nothing about the source's usual delivery and is left out."""
    tracks, chunk = _tracks(), np.ones(640, np.float32)  # 40 ms chunks
    for i in range(50):  # 2 s, each chunk received 45 ms after its first sample
        t = i * 0.04
        tracks.push_audio(0, chunk, 16000, t, received_s=t + 0.045)
    lateness = np.array(tracks.arrival_lateness_s())
    assert len(lateness) == 25  # the first second left out (start-up)
    np.testing.assert_allclose(lateness, 0.045, atol=1e-9)
    tracks.push_audio(0, chunk, 16000, 2.5, received_s=2.51)  # after a 0.5 s hole
    tracks.release_due(2.51, emitted=0)
    assert tracks.self_audio.stats.chunks == 51 and len(tracks.arrival_lateness_s()) == 25
    tracks.fill_overdue(round(2.6 * 16000))  # the next chunk is late: its first part is gone
    tracks.push_audio(0, np.ones(1600, np.float32), 16000, 2.54, received_s=2.7)
    assert tracks.self_audio.stats.trimmed_chunks == 1  # it continued the received audio:
    assert tracks.arrival_lateness_s()[-1] == pytest.approx(0.16)  # counted from its start
    tracks.push_audio(0, chunk, 16000, 2.64, received_s=2.2)  # published ahead: negative
    assert tracks.arrival_lateness_s()[-1] == pytest.approx(-0.44)
    tracks.reset()
    assert tracks.arrival_lateness_s() == []
