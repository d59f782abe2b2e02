"""The fuzzer's counter check: consistent counters pass, each kind of inconsistency fails the
check that names it, and a counter the node does not report is a failure, not a pass."""
from __future__ import annotations

import pytest

from dualtalk_ros.fuzzing.counter_check import (AUDIO_OUTCOMES, FACE_OUTCOMES, check_counters)

SENT = {"self_audio": 100, "partner_audio": 90, "partner_face": 50}
SENT_INVALID = {"self_audio": 40, "partner_audio": 30, "partner_face": 20}


def consistent() -> dict[str, str]:
    """Counters of a node that received all but 5 partner chunks (lost on the way)."""
    values: dict[str, int] = {}
    for kind, sent in SENT.items():
        received = sent - (5 if kind == "partner_audio" else 0)
        overflow = 2
        invalid = SENT_INVALID[kind] - (1 if kind == "partner_audio" else 0)
        values.update({f"received.{kind}": received, f"inbox_overflow.{kind}": overflow,
                       f"invalid.{kind}": invalid,
                       f"accepted.{kind}": received - overflow - invalid})
        outcomes = FACE_OUTCOMES if kind == "partner_face" else AUDIO_OUTCOMES
        values.update({f"{kind}.{o}": 0 for o in outcomes})
        values[f"{kind}.{outcomes[0]}"] = values[f"accepted.{kind}"] - 3
        values[f"{kind}.{outcomes[1]}"] = 3
    values["engine.nan_guarded"] = 0
    return {k: str(v) for k, v in values.items()}


def failed(values: dict[str, str]) -> list[str]:
    return [c.name for c in check_counters(values, SENT, SENT_INVALID) if not c.ok]


def test_consistent_counters_pass() -> None:
    checks = check_counters(consistent(), SENT, SENT_INVALID)
    assert len(checks) == 3 * 5 + 3 + 1
    assert failed(consistent()) == []


def test_the_pre_issue_engine_prefix_is_read_too() -> None:
    values = {(f"engine.{k}" if k.split(".")[0] in SENT else k): v
              for k, v in consistent().items()}
    assert failed(values) == []


@pytest.mark.parametrize("key, value, check", [
    ("received.self_audio", "101", "self_audio: received <= sent"),
    ("accepted.partner_face", "27", "partner_face: received == inbox_overflow + invalid + "
                                    "accepted"),
    ("invalid.self_audio", "41", "self_audio: sent_invalid - lost - overflow <= invalid <= "
                                 "sent_invalid"),
    ("partner_audio.late_chunks", "1", "partner_audio: accepted == sum of outcome counters"),
    ("engine.nan_guarded", "2", "engine.nan_guarded == 0"),
])
def test_each_inconsistency_fails_its_check(key: str, value: str, check: str) -> None:
    values = consistent()
    values[key] = value
    assert check in failed(values)


def test_uncounted_invalid_messages_fail() -> None:
    values = consistent()  # 40 invalid self chunks sent, all arrived, 2 dropped: >= 38 counted
    values["invalid.self_audio"], values["accepted.self_audio"] = "37", "61"
    values["self_audio.chunks"] = "58"
    assert failed(values) == ["self_audio: sent_invalid - lost - overflow <= invalid <= "
                              "sent_invalid"]


def test_missing_counters_fail_unless_nothing_was_sent() -> None:
    values = consistent()
    del values["received.partner_face"]
    assert "partner_face: received <= sent" in failed(values)
    assert failed(consistent()) == []  # the raw kinds were never sent: missing is fine
