"""Echo cancellation (`stream.echo_cancellation`): how much of the robot's own voice it removes
from the partner microphone, and how much of the listening face's reaction to that echo goes.

`python -m bench.echo --out echo.json [--seconds 26] [--rooms default loud]`
On a test conversation of the synthetic corpus (`build_clip("test", 0, seed=0)`, i.e.
syn_test_00000 of `dualtalk-synth --seed 0`: speaker 1 is the robot, speaker 2 the partner),
the partner microphone = the partner's voice + a simulated room echo of the robot's
(`audio.room_echo`; each room's delay, RT60, gain and loudspeaker clipping are in the results):
- canceller: ERLE (echo alone at the microphone, after the first 2 s), the partner's speech
  distortion (mean |mel-band level difference| and mean difference, dB) where only the partner
  speaks and where both do, and the canceller's CPU time per 10 ms;
- faces: the shipped model through `process_clip` at the node's StreamConfig, with
  echo_cancellation off and on: mean |faces(echo) - faces(clean microphone)| over the 52
  blendshapes and over the 3 head-pose angles (rad) (`face_deltas` lists the pairs), during the
  robot's own turns (frames inside its utterances and outside the partner's) and during the
  partner's turns (what the canceller costs the listening face), with the partner's face held
  neutral and with the corpus partner face. The network reads the partner's audio only as
  attention queries over the partner's motion, so with a face held constant no partner audio
  changes any frame.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from typing import Any

import numpy as np
import torch

from bench.common import load_avg, write_json
from bench.targets import NODE
from dualtalk_core.audio.echo_cancellation import EchoCanceller, cancel_echo
from dualtalk_core.audio.room_echo import (RoomEcho, active_frames, erle_db, simulate_echo,
                                           speech_distortion_db)
from dualtalk_core.model import DEFAULT_MODEL_DIR, DualTalkModel
from dualtalk_core.rigs import HEAD_POSE, get_rig
from dualtalk_core.streaming import process_clip
from dualtalk_core.synth.corpus import build_clip
from dualtalk_core.units import FRAME_RATE_HZ

ROOMS = {
    "default": RoomEcho(),  # a speaker 30 cm-1 m from the microphone in a furnished room
    "loud": RoomEcho(gain_db=0.0, nonlinearity=1.0, rt60_ms=500.0, noise_dbfs=-60.0),
}
log = logging.getLogger("bench.echo")


def turn_frames(meta: dict[str, Any], n_frames: int) -> dict[str, np.ndarray]:
    """(T,) bool masks of the robot's own turns and the partner's, each without the other's
    utterances (person 1 = the robot)."""
    t = np.arange(n_frames) / FRAME_RATE_HZ
    speaking = {p: np.zeros(n_frames, bool) for p in (1, 2)}
    for u in meta["utterances"]:
        speaking[u["person"]] |= (t >= u["start_s"]) & (t < u["voiced_end_s"])
    return {"own_turns": speaking[1] & ~speaking[2], "partner_turns": speaking[2] & ~speaking[1]}


def canceller_figures(own: np.ndarray, partner: np.ndarray, echo: np.ndarray) -> dict[str, Any]:
    """ERLE, partner distortion where it speaks alone and in double talk, CPU per 10 ms."""
    canceller = EchoCanceller()
    cpu = time.process_time()
    out = np.concatenate([canceller.process(echo, own), canceller.flush()])[-len(own):]
    cpu = time.process_time() - cpu
    both = cancel_echo(partner + echo, own)
    echoing = active_frames(echo)
    alone = speech_distortion_db(partner, both, mask=~echoing)
    overlap = speech_distortion_db(partner, both, mask=echoing & active_frames(partner))
    heard = speech_distortion_db(partner, partner + echo, mask=echoing & active_frames(partner))
    return {"erle_db": erle_db(echo, out), "cpu_ms_per_10ms": 1e3 * cpu / (len(own) / 160),
            "partner_alone_err_db": alone[0], "partner_alone_gain_db": alone[1],
            "double_talk_err_db": overlap[0], "double_talk_gain_db": overlap[1],
            "double_talk_err_db_no_aec": heard[0]}


def face_runs(model: DualTalkModel, own: np.ndarray, partner: np.ndarray,
              echoes: dict[str, np.ndarray], face: np.ndarray | None) -> dict[str, np.ndarray]:
    """(T, 55) frames of the shipped model per condition: the clean microphone, a silent one
    and each room's echo, with echo cancellation off and on (the node's StreamConfig)."""
    off, on = (dataclasses.replace(NODE.stream, echo_cancellation=x) for x in (False, True))
    runs = {"silent_off": process_clip(model, own, np.zeros_like(partner), face, config=off)}
    for name, mic in {"clean": partner, **{r: partner + e for r, e in echoes.items()}}.items():
        for label, config in (("off", off), ("on", on)):
            runs[f"{name}_{label}"] = process_clip(model, own, mic, face, config=config)
    return runs


def face_deltas(runs: dict[str, np.ndarray], room: str, masks: dict[str, np.ndarray],
                names: list[str]) -> dict[str, Any]:
    """Mean |difference| between two conditions per channel group and turn kind:
    leak_* = echo - clean microphone at one setting (what the echo moves), total_aec_on = echo
    with cancellation - clean without it, aec_cost = clean with - clean without cancellation,
    partner_voice = clean - silent microphone (how much the partner's real voice moves it)."""
    pose = np.isin(names, HEAD_POSE)
    pairs = {"leak_aec_off": (f"{room}_off", "clean_off"),
             "leak_aec_on": (f"{room}_on", "clean_on"),
             "total_aec_on": (f"{room}_on", "clean_off"),
             "aec_cost": ("clean_on", "clean_off"),
             "partner_voice": ("clean_off", "silent_off")}
    out: dict[str, Any] = {}
    for name, (a, b) in pairs.items():
        delta = np.abs(runs[a] - runs[b])  # (T, 55)
        out[name] = {turn: {"blendshapes": float(delta[mask][:, ~pose].mean()),
                            "head_pose_rad": float(delta[mask][:, pose].mean())}
                     for turn, mask in masks.items()}
    return out


def measure(seconds: float, rooms: list[str]) -> dict[str, Any]:
    clip = build_clip("test", 0, seed=0)
    n = min(clip.audio.shape[1], round(seconds * 16000))
    own, partner = clip.audio[:, :n]
    n_frames = math.ceil(n / 640)
    masks = turn_frames(clip.meta, n_frames)
    torch.set_num_threads(NODE.torch_threads)
    model = DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu")
    results: dict[str, Any] = {
        "clip": clip.name, "seconds": n / 16000, "stream": dataclasses.asdict(NODE.stream),
        "frames": {k: int(v.sum()) for k, v in masks.items()}, "rooms": {}}
    echoes = {name: simulate_echo(own, ROOMS[name]) for name in rooms}
    faces = {"neutral_partner_face": None, "corpus_partner_face": clip.coeffs[1, :n_frames]}
    runs = {k: face_runs(model, own, partner, echoes, f) for k, f in faces.items()}
    names = get_rig(model.config.rig).names
    for name, echo in echoes.items():
        row: dict[str, Any] = {"room": dataclasses.asdict(ROOMS[name]),
                               "echo_to_partner_db": 10 * math.log10(
                                   float(np.sum(echo ** 2)) / float(np.sum(partner ** 2)))}
        row.update(canceller_figures(own, partner, echo))
        row["faces"] = {k: face_deltas(r, name, masks, names) for k, r in runs.items()}
        log.info("%s: ERLE %.1f dB", name, row["erle_db"])
        results["rooms"][name] = row
    results["load_avg"] = load_avg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=60.0, help="at most the clip's length")
    parser.add_argument("--rooms", nargs="+", choices=list(ROOMS), default=list(ROOMS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench.echo] %(message)s")
    write_json(args.out, measure(args.seconds, args.rooms))


if __name__ == "__main__":
    main()
