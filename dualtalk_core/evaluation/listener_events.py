"""Does the face react when the corpus' listener reacts? Event-locked responses.

The synthetic corpus logs each listener reaction it generates (`<clip>.json`, `events`): nods a
little after the partner's phrase ends, brow raises after the partner's questions, smiles that
mirror the partner's. Around each such event of a listening target (-0.2 s to +1.0 s, each
trace minus its mean over the 0.2 s before), the event-triggered average of the ground truth is
the corpus' reaction; the model's average over the same events is its reaction. The response
is the model's projected onto the corpus', over the corpus' energy:

    response = <model_eta, gt_eta> / <gt_eta, gt_eta>

1 is the full reaction on time, 0 none (or one uncorrelated with the events), and a reaction
late or early by half its length scores about half. Bootstrap over events gives its interval;
`clear` is the interval above 0. It is measured twice: with the partner's face, and with the
partner's voice alone (the face held neutral, what a robot without a face tracker feeds).
Mirrored smiles follow the partner's face only, so the voice alone cannot show them: that row
is a control (it should be near 0 without the face).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dualtalk_core.audio.voice_activity import LISTENING
from dualtalk_core.rigs import Rig
from dualtalk_core.units import FRAME_RATE_HZ

EVENT_CHANNELS: dict[str, tuple[str, ...]] = {
    "nod": ("headPitch",),
    "brow_raise": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
    "mirror_smile": ("mouthSmileLeft", "mouthSmileRight"),
}
CONDITIONS = ("with_face", "voice_alone")
BEFORE, AFTER = 5, 25  # frames: 0.2 s of baseline, 1.0 s of reaction
N_BOOT = 1000
MAX_EVENTS_FILE_BYTES = 16 << 20


def read_events(root: str | Path, split: str, clip: str) -> dict[int, list[dict]] | None:
    """{speaker 1|2: events} from the corpus' `<clip>.json`; None where there is none (a
    recorded corpus) or it holds no event list."""
    path = Path(root) / split / f"{clip}.json"
    if not path.is_file() or path.stat().st_size > MAX_EVENTS_FILE_BYTES:
        return None
    try:
        events = json.loads(path.read_bytes()).get("events")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    if not isinstance(events, dict):
        return None
    return {s: [e for e in events.get(f"speaker{s}", []) if isinstance(e, dict)]
            for s in (1, 2)}


class EventResponses:
    """Event-locked traces of the ground truth and the model, per event type and condition."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self._idx = {kind: [rig.names.index(n) for n in names if n in rig.names]
                     for kind, names in EVENT_CHANNELS.items()}
        self._traces: dict[str, list[np.ndarray]] = {k: [] for k in EVENT_CHANNELS}

    def add(self, events: list[dict], frame_roles: np.ndarray, gt: np.ndarray,
            preds: dict[str, np.ndarray]) -> None:
        """One direction: its target's events, roles, (T, C) truth and {condition: (T', C)}."""
        n = min(len(gt), len(frame_roles), *(len(p) for p in preds.values()))
        for event in events:
            kind, t = event.get("type"), event.get("t")
            if kind not in self._traces or not isinstance(t, (int, float)) \
                    or not np.isfinite(t) or not self._idx[kind]:
                continue
            k = int(round(float(t) * FRAME_RATE_HZ))
            if k - BEFORE < 0 or k + AFTER > n or frame_roles[k] != LISTENING:
                continue
            rows = [gt] + [preds[c] for c in CONDITIONS]
            seg = np.stack([r[k - BEFORE:k + AFTER][:, self._idx[kind]] for r in rows])
            self._traces[kind].append(seg - seg[:, :BEFORE].mean(axis=1, keepdims=True))

    def summary(self, seed: int = 0) -> dict[str, Any]:
        """Per event type: n, the corpus reaction's size, and per condition the response with
        its bootstrap interval and whether it is clear (interval above 0)."""
        rng = np.random.default_rng(seed)
        out: dict[str, Any] = {}
        for kind, traces in self._traces.items():
            if not traces:
                out[kind] = {"n": 0}
                continue
            seg = np.stack(traces)  # (E, 3, W, ch): truth, with face, voice alone
            boot = rng.integers(0, len(seg), (N_BOOT, len(seg)))
            row: dict[str, Any] = {"n": len(seg),
                                   "gt_peak": float(np.abs(seg[:, 0].mean(axis=0)).max())}
            for c, condition in enumerate(CONDITIONS, start=1):
                value = _response(seg[:, c], seg[:, 0])
                draws = np.array([_response(seg[b, c], seg[b, 0]) for b in boot])
                lo, hi = np.nanpercentile(draws, [2.5, 97.5])
                row[condition] = {"response": value, "ci": [float(lo), float(hi)],
                                  "clear": bool(lo > 0)}
            out[kind] = row
        return out


def _response(model: np.ndarray, truth: np.ndarray) -> float:
    """(E, W, ch) traces -> projection of the model's mean onto the truth's mean."""
    m, g = model.mean(axis=0).ravel(), truth.mean(axis=0).ravel()
    energy = float(g @ g)
    return float(m @ g) / energy if energy > 0 else float("nan")
