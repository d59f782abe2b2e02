"""Channel trajectories of a few clips as PNGs: the model's prediction against the ground
truth and the partner, speaker 1 as the target, for a look at what the numbers summarise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dualtalk_core.dataset.clips import load_clip
from dualtalk_core.evaluation import baselines as base
from dualtalk_core.evaluation.scoring import clip_directions
from dualtalk_core.rigs import get_rig
from dualtalk_core.units import FRAME_RATE_HZ

PLOT_CHANNELS: dict[str, tuple[str, ...]] = {
    "arkit52": ("jawOpen", "mouthSmileLeft", "headPitch"),
    "flame56": ("jawRotX", "exp0", "headRotX"),
}


def plot_clips(model: base.Predictor, root: str | Path, split: str, clips: list[str],
               out_dir: str | Path, rig: str) -> list[Path]:
    """One PNG per clip (speaker 1 as target): prediction, ground truth and partner channels."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display on training boxes
    import matplotlib.pyplot as plt

    rig_obj = get_rig(rig)
    channels = [c for c in PLOT_CHANNELS.get(rig, rig_obj.names[:3]) if c in rig_obj.names]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in clips:
        clip = load_clip(root, split, name)
        _, own_audio, other_audio, other_motion, gt = next(clip_directions(clip))
        pred = model.predict(own_audio, other_audio, other_motion,
                             waveform_stats=clip.waveform_stats)[:len(gt)]
        fig, axes = plt.subplots(len(channels), 1, figsize=(10, 2.2 * len(channels)),
                                 sharex=True, squeeze=False)
        for ax, channel in zip(axes[:, 0], channels):
            i = rig_obj.names.index(channel)
            t = np.arange(len(gt)) / FRAME_RATE_HZ
            ax.plot(t, other_motion[:, i], label="partner", color="0.7", linewidth=0.8)
            ax.plot(t, gt[:, i], label="ground truth", color="black", linewidth=1.0)
            ax.plot(t[: len(pred)], pred[: len(t), i], label="prediction", color="tab:red",
                    linewidth=1.0)
            ax.set_ylabel(channel)
        axes[0, 0].legend(loc="upper right")
        axes[0, 0].set_title(f"{split}/{name}, speaker 1")
        axes[-1, 0].set_xlabel("time (s)")
        fig.tight_layout()
        path = out_dir / f"{name}_speaker1.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
