"""A PulseAudio virtual microphone fed in real time from a FIFO, for testing mic capture.

PulseAudio runs with its own HOME and XDG_RUNTIME_DIR in a temp folder; `module-pipe-source`
turns a FIFO into the default input, so PortAudio's `pulse` device records what we write.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

RATE = 16000
CHUNK = 512


class VirtualMic:
    def __init__(self, folder: Path, signal: np.ndarray) -> None:
        if shutil.which("pulseaudio") is None:
            raise RuntimeError("pulseaudio not installed; run `make setup`")
        self.folder = folder
        self.signal = signal.astype("<i2")
        self.env = dict(os.environ, HOME=str(folder / "home"),
                        XDG_RUNTIME_DIR=str(folder / "run"))
        self.fifo = folder / "run" / "vmic.fifo"
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.start_time: float | None = None  # wall time at which sample 0 entered the FIFO

    def _pactl(self, *args: str) -> None:
        subprocess.run(["pactl", *args], env=self.env, check=True, capture_output=True,
                       timeout=20)

    def __enter__(self) -> "VirtualMic":
        for sub in ("home", "run"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
             "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=null",
             "--load=module-always-sink"], env=self.env, check=True, capture_output=True,
            timeout=30)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start")
            time.sleep(0.1)
        self._pactl("load-module", "module-pipe-source", "source_name=vmic",
                    f"file={self.fifo}", "format=s16le", f"rate={RATE}", "channels=1")
        self._pactl("set-default-source", "vmic")
        self._writer = threading.Thread(target=self._feed, daemon=True)
        self._writer.start()
        return self

    def _feed(self) -> None:
        """Write the signal in real time, then silence, until stopped (a stalled FIFO stalls
        PulseAudio's source, which is not what a real microphone does)."""
        fd = os.open(self.fifo, os.O_WRONLY)
        start, i = time.monotonic(), 0
        self.start_time = time.time()
        try:
            while not self._stop.is_set():
                block = self.signal[i * CHUNK:(i + 1) * CHUNK]
                block = np.pad(block, (0, CHUNK - len(block)))
                os.write(fd, block.tobytes())
                i += 1
                time.sleep(max(0.0, start + i * CHUNK / RATE - time.monotonic()))
        finally:
            os.close(fd)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=2)
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=20)
