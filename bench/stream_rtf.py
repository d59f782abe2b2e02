"""Real-time factor of the streaming engine: compute time / stream time (below 1 = real time).

Streams two speakers (alternating turns of noise-modulated tones, the partner's face at 25 fps)
through `StreamingEngine` in microphone-sized chunks, stepping after every chunk as the ROS node's
timer would, and times push + step: `rtf` in wall time, `cpu_rtf` in this process's CPU time
(the better figure on a shared machine). Weights are random unless --model is given: the cost
of the network does not depend on them.

    python bench/stream_rtf.py                 # lite preset, default StreamConfig, 20 s
    python bench/stream_rtf.py --hop-ms 40 --threads 2 --rate 48000
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time

import numpy as np
import torch

from dualtalk_core.heap_tuning import tune_heap_for
from dualtalk_core.streaming import StreamingEngine
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

log = logging.getLogger("stream_rtf")


def speech_like(seconds: float, rate: int, talking: np.ndarray, seed: int) -> np.ndarray:
    """(N,) float32: a 120-250 Hz tone plus noise at syllable rate, silent when not talking."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 130 * rng.random()
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * talking[(t * FRAME_RATE_HZ).astype(int)]
    voice = np.sin(2 * np.pi * f0 * t) + 0.3 * rng.standard_normal(len(t))
    return (0.2 * envelope * voice).astype(np.float32)


def run(args: argparse.Namespace) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("hop_ms", args.hop_ms), ("window_ms", args.window_ms))
                 if v is not None}
    config = dataclasses.replace(DualTalkNodeSettings().stream, **overrides)  # node defaults
    engine = StreamingEngine.load(args.model or "lite", config, device="cpu")
    tune_heap_for(engine)  # as the node's pipeline does
    frames = int(args.seconds * FRAME_RATE_HZ) + 1
    turns = (np.arange(frames) // 100) % 2 == 0  # 4 s turns
    own = speech_like(args.seconds, args.rate, turns, 0)
    other = speech_like(args.seconds, args.rate, ~turns, 1)
    chunk = round(args.chunk_ms * args.rate / 1000)
    names, face = list(engine.rig.names), np.zeros(engine.rig.dim, np.float32)
    t0, n_out, next_face = 1000.0, 0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(own), chunk):
        t = t0 + i / args.rate
        engine.push_self_audio(own[i:i + chunk], args.rate, t)
        engine.push_partner_audio(other[i:i + chunk], args.rate, t)
        while t0 + next_face / FRAME_RATE_HZ < t + chunk / args.rate:
            engine.push_partner_face(face, names, t0 + next_face / FRAME_RATE_HZ)
            next_face += 1
        n_out += len(engine.step(now=t + chunk / args.rate))
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started  # less sensitive than wall time to a busy machine
    stats = engine.stats
    return {"stream_s": args.seconds, "wall_s": elapsed, "rtf": elapsed / args.seconds,
            "cpu_rtf": cpu_s / args.seconds,
            "model_rtf": stats.compute_s / args.seconds, "frames": n_out,
            "model_runs": stats.model_runs, "hop_ms": config.hop_ms,
            "window_ms": config.window_ms, "lookahead_ms": engine.lookahead_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or preset (default: the lite preset)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=SAMPLE_RATE_HZ, help="input sample rate, Hz")
    parser.add_argument("--chunk-ms", type=float, default=32.0, help="audio chunk length")
    parser.add_argument("--hop-ms", type=float, default=None, help="default: the node's")
    parser.add_argument("--window-ms", type=float, default=None, help="default: the node's")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run(args)
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in result.items()))


if __name__ == "__main__":
    main()
