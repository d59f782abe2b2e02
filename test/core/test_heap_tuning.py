"""The heap setting follows the stepper: windowed engines opt in, the incremental one does not."""
from __future__ import annotations

import torch

from dualtalk_core.heap_tuning import tune_heap_for
from dualtalk_core.model import DualTalkModel
from dualtalk_core.streaming import StreamConfig, StreamingEngine

torch.set_num_threads(1)


def test_only_a_windowed_engine_keeps_freed_memory():
    torch.manual_seed(0)
    model = DualTalkModel.from_preset("lite", device="cpu", lookahead_frames=0,
                                      attention_span_frames=20).eval()
    incremental = StreamingEngine(model, StreamConfig(window_ms=2000.0, hop_ms=40.0))
    windowed = StreamingEngine(model, StreamConfig(window_ms=2000.0, hop_ms=80.0,
                                                   stepper="windowed"))
    assert incremental.incremental and not windowed.incremental
    assert tune_heap_for(incremental) is False
    assert tune_heap_for(windowed) is True
    assert tune_heap_for(windowed) is True  # idempotent
