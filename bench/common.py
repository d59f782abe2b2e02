"""Helpers shared by the benchmark sections: machine facts, statistics, inputs, subprocesses.

Every section runs in its own Python process (its own torch threads, allocator state and peak
memory) and hands its figures back as one JSON file; nothing here knows any expected value.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dualtalk_core.units import FRAME_RATE_HZ, SAMPLE_RATE_HZ

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = ROOT / "dualtalk_core" / "models" / "default"


def model_source() -> str:
    """The shipped default model when it exists, else the `lite` preset (same architecture and
    cost; random weights)."""
    return str(DEFAULT_MODEL_DIR) if (DEFAULT_MODEL_DIR / "config.json").is_file() else "lite"


def load_avg() -> list[float]:
    """1, 5 and 15 minute load averages: a reader judges noisy figures by them."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU, cores, library versions, torch threads, GPU (if any) and load, taken now."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"hostname": platform.node(), "cpu_model": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "torch_threads_default": torch.get_num_threads(),
            "gpu": gpu, "load_avg": load_avg(), "model": model_source()}


def percentiles(values: Any, ps: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """{'p50': ..., 'p95': ..., 'max': ...} of a 1-D sample, in its own unit (NaN when empty)."""
    x = np.asarray(values, dtype=np.float64)
    out = {f"p{p}": float(np.percentile(x, p)) if x.size else float("nan") for p in ps}
    out["max"] = float(x.max()) if x.size else float("nan")
    out["n"] = int(x.size)
    return out


def speech_like(seconds: float, rate: int, talking: np.ndarray, seed: int) -> np.ndarray:
    """(N,) float32: a 120-250 Hz tone plus noise at syllable rate, silent when not talking.

    `talking` holds one bool per 25 fps frame. Content does not change the cost of any path
    measured here; turn-taking keeps both speakers' paths (speech and silence) exercised.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 130 * rng.random()
    frames = np.minimum((t * FRAME_RATE_HZ).astype(int), len(talking) - 1)
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * talking[frames]
    voice = np.sin(2 * np.pi * f0 * t) + 0.3 * rng.standard_normal(len(t))
    return (0.2 * envelope * voice).astype(np.float32)


def conversation(seconds: float, rate: int = SAMPLE_RATE_HZ, turn_s: float = 4.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Own and partner audio (N,) each: alternating `turn_s` turns, as in a dialogue."""
    frames = int(seconds * FRAME_RATE_HZ) + 1
    turns = (np.arange(frames) // int(turn_s * FRAME_RATE_HZ)) % 2 == 0
    return speech_like(seconds, rate, turns, 0), speech_like(seconds, rate, ~turns, 1)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, this thread's CPU s, result) of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    return time.perf_counter() - wall, time.thread_time() - cpu, result


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus `extra`, with the repository importable and output unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_section(module: str, args: list[str], out: Path, timeout_s: float,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m <module> --out OUT <args>` and return its JSON, or an error record.

    A failed section is recorded with its stderr tail rather than stopping the whole run: the
    other figures are still worth having.
    """
    cmd = [sys.executable, "-m", module, "--out", str(out), *args]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=python_env(env), timeout=timeout_s,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        failed = proc.returncode != 0 or not out.is_file()
        tail = proc.stdout[-3000:]
    except subprocess.TimeoutExpired as exc:
        failed, tail = True, f"timed out after {timeout_s:.0f} s\n{str(exc.stdout)[-2000:]}"
    if failed:
        print(f"[bench] {module} {' '.join(args)} FAILED:\n{tail}", file=sys.stderr)
        return {"error": tail, "process_s": time.perf_counter() - started}
    result = json.loads(out.read_text())
    result["process_s"] = round(time.perf_counter() - started, 1)
    return result


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
