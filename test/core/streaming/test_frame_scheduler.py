"""The frame schedule: which frames a run emits and from which window, stalls, the lookahead.

Pure index arithmetic, no model: need(k) = 640 k + 16 L grid samples (L the lookahead in ms).
"""
from __future__ import annotations

import pytest

from dualtalk_core.streaming import StreamConfig
from dualtalk_core.streaming.frame_scheduler import FrameScheduler, effective_lookahead


def _schedule(model_ms: float | None = 200.0, **kw) -> FrameScheduler:
    return FrameScheduler(model_ms, StreamConfig(**{"window_ms": 2000.0, "hop_ms": 120.0, **kw}))


def test_effective_lookahead_one_rule():
    assert effective_lookahead(200.0, -1.0) == (True, 200.0)  # < 0: the model's bound
    assert effective_lookahead(200.0, 400.0) == (True, 200.0)  # more than needed: exact
    assert effective_lookahead(200.0, 120.0) == (False, 120.0)  # below the bound: enforced
    assert effective_lookahead(None, 400.0) == (False, 400.0)  # non-causal: enforced
    with pytest.raises(ValueError, match="set StreamConfig.lookahead_ms"):
        effective_lookahead(None, -1.0)
    with pytest.raises(ValueError, match="under one 40 ms frame"):
        effective_lookahead(200.0, 20.0)


def test_exact_mode_emits_every_ready_frame_once_a_hop_is_ready():
    s = _schedule()
    assert s.exact and s.need(0) == 3200 and s.need(2) == 4480
    assert s.next_batch(4479, final=False) is None  # 2 frames ready: less than a hop
    assert s.next_batch(4480, final=False) == (0, 3, 4480)  # window ends at need(k + m - 1)
    assert s.next_batch(6000, final=False) == (0, 5, 5760)  # all ready frames
    most = (32000 - 3200) // 640 + 1  # the window holds them and their lookahead
    assert s.next_batch(10 ** 6, final=False) == (0, most, s.need(most - 1))
    assert s.next_batch(100, final=True) == (0, 1, 100)  # the end: no lookahead left
    s.advance_to(3)
    assert s.next_batch(5120, final=False) is None and s.keep_from() == 0
    s.advance_to(60)
    assert s.keep_from() == 60 * 640 - 32000


def test_enforced_mode_emits_a_hop_from_a_window_ending_at_need_k():
    s = _schedule(None, lookahead_ms=120.0)
    assert not s.exact and s.need(0) == 1920
    assert s.next_batch(1919, final=False) is None
    assert s.next_batch(10 ** 6, final=False) == (0, 3, 1920)  # never more than a hop
    assert s.next_batch(1919, final=True) == (0, 3, 1919)  # the frames that exist
    s.advance_to(3)
    assert s.next_batch(3840, final=False) == (3, 3, 3840)
    assert s.next_batch(1920, final=True) is None  # frame 3 has no sample yet
    assert s.next_batch(1921, final=True) == (3, 1, 1921)  # one sample: it exists


def test_sizes_that_cannot_work_are_rejected():
    with pytest.raises(ValueError, match="hop_ms <= lookahead_ms"):
        _schedule(None, lookahead_ms=80.0)
    with pytest.raises(ValueError, match="window_ms=200.0 must be >= lookahead_ms \\+ hop_ms"):
        _schedule(window_ms=200.0)


def test_overdue_input_and_the_stall_skip():
    s = _schedule(input_timeout_ms=150.0, max_buffer_s=1.0)
    assert s.due(1.0) == 13600  # 0.85 s after the anchor
    limit = s.need(0) + 16000
    assert s.stall_resume_frame(limit) is None  # a full buffer is not a stall yet
    resume = s.stall_resume_frame(limit + 6400)
    assert resume == (limit + 6400 - 3200) // 640 - 3 + 1
    assert s.skip_to(resume) == resume and s.next == resume and s.frames_skipped == resume
    batch = s.next_batch(limit + 6400, final=False)  # the step that jumps emits again
    assert batch is not None and batch[:2] == (resume, 3)
    s.input_timeout_ms = 1000.0  # a live setting: read at every step
    assert s.due(1.0) == 0
    s.reset()
    assert (s.next, s.frames_skipped) == (0, 0)
