"""The node's /diagnostics counters held against what the fuzzer sent (issue 24's accounting).

Per input kind (`received.<kind>`, `inbox_overflow.<kind>`, `invalid.<kind>`,
`accepted.<kind>`): nothing received that was not sent; every received message dropped, rejected
or accepted; no more rejected than were invalid, and every invalid message that arrived and was
not dropped counted as rejected. Per engine input: everything accepted ends in exactly one
outcome counter. And `engine.nan_guarded` stays 0. A counter the node does not report fails
its check (a kind never sent may be missing: it counts as 0). Engine counters are read as
`self_audio.chunks`, or `engine.self_audio.chunks` where the node still reports them so.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("self_audio", "partner_audio", "partner_face", "self_audio_raw", "partner_audio_raw")
# engine input -> the input kinds feeding it
ENGINE_INPUTS = {"self_audio": ("self_audio", "self_audio_raw"),
                 "partner_audio": ("partner_audio", "partner_audio_raw"),
                 "partner_face": ("partner_face",)}
AUDIO_OUTCOMES = ("chunks", "duplicate_chunks", "out_of_order_chunks", "late_chunks",
                  "overflow_chunks", "outlier_chunks", "held_chunks")
FACE_OUTCOMES = ("faces", "duplicate_faces", "out_of_order_faces", "too_old_faces",
                 "overflow_faces", "outlier_faces", "held_faces")


@dataclass
class Check:
    """One comparison: what was checked, whether it held, and the figures behind it."""

    name: str
    ok: bool
    detail: str


class MissingCounter(KeyError):
    """A counter the node should report and does not."""


def check_counters(values: dict[str, str], sent: dict[str, int],
                   sent_invalid: dict[str, int]) -> list[Check]:
    """Every check over the final /diagnostics `values` (key -> value strings), given the
    messages sent and the invalid ones among them, per input kind."""
    checks = []
    for kind in KINDS:
        checks += _kind_checks(values, kind, sent.get(kind, 0), sent_invalid.get(kind, 0))
    for engine_input, kinds in ENGINE_INPUTS.items():
        checks.append(_outcome_check(values, engine_input, kinds, sent))
    checks.append(_guarded(lambda: _count(values, "engine.nan_guarded", True) == 0,
                           "engine.nan_guarded == 0",
                           lambda: f"engine.nan_guarded = {values.get('engine.nan_guarded')}"))
    return checks


def as_records(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


def _count(values: dict[str, str], key: str, required: bool) -> int:
    """The counter `key`, or as the node reported engine counters before issue 24
    (`engine.self_audio.chunks`)."""
    for name in (key, f"engine.{key}"):
        if name in values:
            return int(float(values[name]))
    if required:
        raise MissingCounter(key)
    return 0


def _guarded(test: Any, name: str, detail: Any) -> Check:
    try:
        return Check(name, bool(test()), detail())
    except MissingCounter as exc:
        return Check(name, False, f"counter {exc.args[0]} not in /diagnostics")
    except ValueError as exc:
        return Check(name, False, f"counter not a number: {exc}")


def _kind_checks(values: dict[str, str], kind: str, sent: int, bad: int) -> list[Check]:
    required = sent > 0

    def c(name: str) -> int:
        return _count(values, f"{name}.{kind}", required)

    def detail() -> str:
        return (f"sent {sent} (invalid {bad}), received {c('received')}, inbox_overflow "
                f"{c('inbox_overflow')}, invalid {c('invalid')}, accepted {c('accepted')}")

    def lower_bound() -> int:
        return bad - (sent - c("received")) - c("inbox_overflow")

    return [
        _guarded(lambda: c("received") <= sent, f"{kind}: received <= sent", detail),
        _guarded(lambda: c("received") == c("inbox_overflow") + c("invalid") + c("accepted"),
                 f"{kind}: received == inbox_overflow + invalid + accepted", detail),
        _guarded(lambda: lower_bound() <= c("invalid") <= bad,
                 f"{kind}: sent_invalid - lost - overflow <= invalid <= sent_invalid", detail),
    ]


def _outcome_check(values: dict[str, str], engine_input: str, kinds: tuple[str, ...],
                   sent: dict[str, int]) -> Check:
    outcomes = FACE_OUTCOMES if engine_input == "partner_face" else AUDIO_OUTCOMES

    def accepted() -> int:
        return sum(_count(values, f"accepted.{k}", sent.get(k, 0) > 0) for k in kinds)

    def ended() -> int:
        return sum(_count(values, f"{engine_input}.{o}", True) for o in outcomes)

    def detail() -> str:
        parts = ", ".join(f"{o} {values.get(engine_input + '.' + o)}" for o in outcomes)
        return f"accepted {accepted()}, outcomes {ended()} ({parts})"

    return _guarded(lambda: accepted() == ended(),
                    f"{engine_input}: accepted == sum of outcome counters", detail)
