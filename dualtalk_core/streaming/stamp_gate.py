"""Holds back an input whose stamp jumps far ahead of its stream until the jump is confirmed.

A timeline accepts its input in stamp order and never rewrites what it wrote: one chunk stamped
4 s ahead (a publisher's clock glitch, a corrupted header) would fill 4 s with silence and make
every good chunk after it "out of order" for 4 s. A real jump (the input resumes after a pause)
and a glitch look the same on arrival; what follows tells them apart. So a jump over `jump_s`
is held, and:
- the next item continues the held one: the jump was real; both go in, in order;
- the next item continues the old timeline: the held one was a glitch; it is dropped, counted;
- the clock reaches the held item's stamp (`release_due`): nothing contradicted it; it goes in;
- the stream ends (`release_all`): it goes in.
A real resumption after a pause is stamped at or before its arrival, so it is released by the
same step that receives it; speech published ahead waits for the next chunk of its burst.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class _Held(Generic[Item]):
    item: Item
    start_s: float
    end_s: float


class StampGate(Generic[Item]):
    """One input's gate; times are the stream's (seconds after its anchor)."""

    def __init__(self, jump_s: float) -> None:
        self.jump_s = float(jump_s)
        self.outliers = 0  # items dropped as glitches
        self._held: _Held[Item] | None = None

    @property
    def holding(self) -> int:
        """Items held now (0 or 1)."""
        return int(self._held is not None)

    def reset(self) -> None:
        self._held = None

    def admit(self, item: Item, start_s: float, end_s: float,
              expected_s: float | None) -> list[Item]:
        """The items to file now, in order, given a new `item` covering [start_s, end_s) and
        where its stream expects the next input (`expected_s`; None: nothing accepted yet)."""
        held, self._held = self._held, None
        if held is not None:
            # Continuing the held item means starting at or after it (a copy of it included),
            # not back where the old timeline is: that disowns it.
            if held.start_s <= start_s <= held.end_s + self.jump_s:
                return [held.item, item]  # the jump goes on: it was real
            self.outliers += 1  # the stream went on without it: a glitch
        if expected_s is None or start_s - expected_s <= self.jump_s:
            return [item]
        self._held = _Held(item, start_s, end_s)
        return []

    def release_due(self, now_s: float) -> list[Item]:
        """The held item once the clock has reached its stamp (no later input disowned it)."""
        if self._held is not None and now_s >= self._held.start_s:
            return self.release_all()
        return []

    def release_all(self) -> list[Item]:
        held, self._held = self._held, None
        return [] if held is None else [held.item]
