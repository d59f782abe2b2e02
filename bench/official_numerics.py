"""How far the published network's streaming normalisation and bf16 stray from the release's
float32 whole-clip inference, on the synthetic test split (random-init official weights: the
real ones are not here; the deviations are properties of the inputs and the arithmetic).

    python -m bench.official_numerics --data data/synth --clips 8 --out bench/results

1. Streaming normalisation: the engine's windows (the node's 8 s window, an enforced 400 ms
   lookahead, a 400 ms hop), every 10th run: each window through `predict` once with the
   release's whole-file statistics and once with the running statistics of the audio heard up
   to the window's end (what `StreamingEngine` uses). Reported: cosine similarity of the audio
   features (own and partner, after the shared projection) per frame, and the MSE per group of
   the frames that run emits, next to the whole-clip output's variance per group.
2. Precision: whole-clip `predict` in float32 and under bf16 autocast (CPU here; CUDA where a
   GPU is), MSE and max |difference| per group.
Writes official-numerics-<date>-<machine>.{json,md} into --out.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from dualtalk_core.dataset.clips import Clip, list_clips, load_clip
from dualtalk_core.model import DualTalkModel
from dualtalk_core.model.network_inputs import normalise_voices
from dualtalk_core.model.waveform_norm import RunningWaveformStats, WaveformStats
from dualtalk_core.rigs import GROUPS, get_rig
from dualtalk_core.units import SAMPLES_PER_FRAME
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings

LOOKAHEAD_MS = 400.0  # the official network is non-causal: the engine enforces a bound
HOP_MS = 400.0
EVERY_NTH_RUN = 10
log = logging.getLogger("bench.official_numerics")


def running_stats(audio: np.ndarray, end: int) -> WaveformStats:
    """What the engine's track has heard by grid sample `end`."""
    stats = RunningWaveformStats()
    stats.update(audio[:end])
    return stats.current()


def window_runs(n_frames: int, window_ms: float) -> list[tuple[int, int]]:
    """(first frame of the emitted hop, window end sample) of every 10th enforced-mode run."""
    hop, look = round(HOP_MS / 40), round(LOOKAHEAD_MS * 16)
    runs = [(k, k * SAMPLES_PER_FRAME + look) for k in range(0, n_frames, hop)]
    runs = [(k, end) for k, end in runs if end <= n_frames * SAMPLES_PER_FRAME]
    return runs[EVERY_NTH_RUN - 1::EVERY_NTH_RUN]


def _features(model: DualTalkModel) -> list[Any]:
    captured: list[Any] = []
    model.joint_encoder.register_forward_hook(
        lambda _m, _a, out: captured.append([o[0].float().numpy().copy() for o in out[:2]]))
    return captured


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1),
                                        1e-12)


def streaming_deviation(model: DualTalkModel, clip: Clip, window_ms: float,
                        features: list[Any]) -> list[dict[str, Any]]:
    """One row per sampled run of both directions of `clip`."""
    rows = []
    window = round(window_ms * 16)
    for me in (0, 1):
        own, other = clip.audio[me], clip.audio[1 - me]
        for k, end in window_runs(clip.frames, window_ms):
            f0 = max(0, -(-(end - window) // SAMPLES_PER_FRAME))
            start, n = f0 * SAMPLES_PER_FRAME, -(-(end - f0 * SAMPLES_PER_FRAME)
                                                 // SAMPLES_PER_FRAME)
            motion = clip.motion[1 - me][f0:f0 + n]
            args = (own[start:end], other[start:end], motion)
            whole = model.predict(*args, n_frames=n, waveform_stats=(
                clip.waveform_stats[me], clip.waveform_stats[1 - me]))
            feat_whole = features[-1]
            stream = model.predict(*args, n_frames=n, waveform_stats=(
                running_stats(own, end), running_stats(other, end)))
            feat_stream = features[-1]
            hop = slice(k - f0, k - f0 + round(HOP_MS / 40))
            rows.append({"clip": clip.name, "target": me + 1, "end_s": end / 16000,
                         "cos_own": float(_cosine(feat_whole[0], feat_stream[0]).mean()),
                         "cos_partner": float(_cosine(feat_whole[1], feat_stream[1]).mean()),
                         **_group_errors(whole[hop], stream[hop], whole, clip.rig)})
    return rows


def precision_deviation(model: DualTalkModel, clip: Clip, seconds: float) -> dict[str, Any]:
    """Whole-clip float32 vs bf16 autocast on the model's device, first `seconds` of `clip`.

    The network is called directly: `predict` applies the model's own `cuda_autocast` option,
    which leaves the CPU in float32."""
    n = min(len(clip.audio[0]), round(seconds * 16000)) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME
    own, other = normalise_voices(clip.audio[0][:n], clip.audio[1][:n], clip.waveform_stats)
    inputs = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None].to(model.device)
              for a in (own, other, clip.motion[1][:n // SAMPLES_PER_FRAME])]
    with torch.inference_mode():
        f32 = model(*inputs)[0].float().cpu().numpy()
        with torch.autocast(model.device.type, dtype=torch.bfloat16):
            bf16 = model(*inputs)[0].float().cpu().numpy()
    errors = _group_errors(bf16, f32, f32, clip.rig)
    diff = bf16.astype(np.float64) - f32
    rig = get_rig(clip.rig)
    return {"clip": clip.name, "seconds": n / 16000, **errors,
            **{f"max_{g}": float(np.abs(diff[:, rig.group_index(g)]).max()) for g in GROUPS}}


def _group_errors(a: np.ndarray, b: np.ndarray, reference: np.ndarray,
                  rig_name: str) -> dict[str, float]:
    """MSE of a - b per group, and the reference output's variance per group (for scale)."""
    rig = get_rig(rig_name)
    out = {}
    for g in GROUPS:
        idx = rig.group_index(g)
        out[f"mse_{g}"] = float(np.mean((a[:, idx].astype(np.float64) - b[:, idx]) ** 2))
        out[f"var_{g}"] = float(reference[:, idx].var())
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k in rows[0] if isinstance(rows[0][k], float) and k != "end_s"]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys} | {
        f"min_{k}": float(np.min([r[k] for r in rows])) for k in keys if k.startswith("cos")}


def markdown(result: dict[str, Any]) -> str:
    s, p = result["streaming"]["summary"], result["precision"]["summary"]
    lines = [f"# Published-network numerics {result['date']} on {result['machine']}", "",
             f"Official preset (its input/output layers sized for rig {result['rig']}), random "
             f"init (seed 0), {result['device']}, "
             f"{result['clips']} synthetic `test` clips, both directions.", "",
             f"## Streaming vs whole-clip normalisation ({len(result['streaming']['rows'])} "
             f"runs: window {result['window_ms']:.0f} ms, lookahead {LOOKAHEAD_MS:.0f} ms, "
             f"hop {HOP_MS:.0f} ms, every {EVERY_NTH_RUN}th run)", "",
             "| audio feature cosine, own | partner | min own | min partner |",
             "| --- | --- | --- | --- |",
             f"| {s['cos_own']:.5f} | {s['cos_partner']:.5f} | {s['min_cos_own']:.5f} | "
             f"{s['min_cos_partner']:.5f} |", "",
             "| group | output MSE of emitted frames | whole-clip output variance |",
             "| --- | --- | --- |",
             *(f"| {g} | {s[f'mse_{g}']:.3g} | {s[f'var_{g}']:.3g} |" for g in GROUPS), "",
             f"## bf16 autocast vs float32, whole clip ({result['precision']['device']}, "
             f"{len(result['precision']['rows'])} clips)", "",
             "| group | MSE | max abs difference | float32 output variance |",
             "| --- | --- | --- | --- |",
             *(f"| {g} | {p[f'mse_{g}']:.3g} | {p[f'max_{g}']:.3g} | {p[f'var_{g}']:.3g} |"
               for g in GROUPS)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus with a test split")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--precision-clips", type=int, default=4)
    parser.add_argument("--precision-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[numerics] %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    names = list_clips(args.data, "test")[:args.clips]
    clips = [load_clip(args.data, "test", n) for n in names]
    # The published architecture; only its first and last layers follow the corpus' rig.
    model = DualTalkModel.from_preset("official", rig=clips[0].rig).eval()
    window_ms = DualTalkNodeSettings().stream.window_ms
    features = _features(model)
    rows = [r for c in tqdm(clips, desc="streaming", unit="clip")
            for r in streaming_deviation(model, c, window_ms, features)]
    prec = [precision_deviation(model, c, args.precision_seconds)
            for c in tqdm(clips[:args.precision_clips], desc="bf16", unit="clip")]
    result = {"date": datetime.date.today().isoformat(), "machine": platform.node(),
              "rig": clips[0].rig,
              "device": str(model.device), "clips": len(clips), "window_ms": window_ms,
              "streaming": {"rows": rows, "summary": summarise(rows)},
              "precision": {"device": str(model.device), "rows": prec,
                            "summary": summarise(prec)},
              "seconds": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"official-numerics-{result['date']}-{result['machine']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
