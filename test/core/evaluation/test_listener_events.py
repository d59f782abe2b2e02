"""Event-locked responses: a face that reacts as the corpus does scores 1, a deaf one 0, half
a reaction one half; events outside listening do not count; corpus files without events
give None."""
from __future__ import annotations

import json

import numpy as np

from dualtalk_core.audio.voice_activity import LISTENING, SPEAKING
from dualtalk_core.evaluation import listener_events as le
from dualtalk_core.rigs import get_rig

RIG = get_rig("arkit52")
T = 2000
PITCH = RIG.names.index("headPitch")


def _faces(times: list[float], rng: np.random.Generator) -> np.ndarray:
    face = np.tile(RIG.neutral_array(), (T, 1)) + 0.01 * rng.standard_normal((T, RIG.dim))
    bump = 0.1 * np.sin(np.linspace(0, np.pi, 12))
    for t in times:
        k = int(round(t * 25)) + 3
        face[k:k + 12, PITCH] += bump
    return face


def test_responses_score_the_reaction_and_ignore_other_roles():
    rng = np.random.default_rng(0)
    times = list(np.arange(2.0, 76.0, 1.7))
    gt = _faces(times, rng)
    events = [{"type": "nod", "t": float(t)} for t in times]
    roles = np.full(T, LISTENING)
    responses = le.EventResponses(RIG)
    half = RIG.neutral_array() + (gt - RIG.neutral_array()) * 0.5 \
        + 0.01 * rng.standard_normal(gt.shape)
    responses.add(events, roles, gt, {"with_face": gt.copy(), "voice_alone": half})
    deaf = le.EventResponses(RIG)
    deaf.add(events, roles, gt, {"with_face": _faces([], rng), "voice_alone": _faces([], rng)})
    nod = responses.summary()["nod"]
    assert nod["n"] == len(times)
    assert abs(nod["with_face"]["response"] - 1.0) < 1e-9 and nod["with_face"]["clear"]
    assert abs(nod["voice_alone"]["response"] - 0.5) < 0.05 and nod["voice_alone"]["clear"]
    lo, hi = nod["voice_alone"]["ci"]
    assert lo < 0.5 < hi
    silent = deaf.summary()["nod"]["with_face"]
    assert abs(silent["response"]) < 0.1 and not silent["clear"]
    speaking = le.EventResponses(RIG)
    speaking.add(events, np.full(T, SPEAKING), gt, {"with_face": gt, "voice_alone": gt})
    assert speaking.summary()["nod"] == {"n": 0}
    odd = le.EventResponses(RIG)  # malformed events are skipped, not fatal
    odd.add([{"type": "nod"}, {"type": "nod", "t": "x"}, {"type": "nod", "t": float("nan")},
             {"type": "nod", "t": 1e30}, {"type": "wave", "t": 3.0}], roles, gt,
            {"with_face": gt, "voice_alone": gt})
    assert odd.summary()["nod"] == {"n": 0}


def test_events_are_read_from_the_corpus_sidecar_only_when_there(tmp_path):
    (tmp_path / "test").mkdir()
    assert le.read_events(tmp_path, "test", "c0") is None
    (tmp_path / "test" / "c0.json").write_text(json.dumps(
        {"events": {"speaker1": [{"type": "nod", "t": 1.0}, 5], "speaker2": []}}))
    assert le.read_events(tmp_path, "test", "c0") == {1: [{"type": "nod", "t": 1.0}], 2: []}
    (tmp_path / "test" / "c1.json").write_text("[1, 2")
    assert le.read_events(tmp_path, "test", "c1") is None
    (tmp_path / "test" / "c2.json").write_text(json.dumps(["not", "a", "dict"]))
    assert le.read_events(tmp_path, "test", "c2") is None
