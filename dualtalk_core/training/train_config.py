"""`TrainConfig`: every setting of a training run besides its data and output folders.

Defaults are the published recipe (docs/DESIGN.md, section 9); each field not in it says so
and is off by default. Why each extra term exists and what was measured with it is in
docs/EXPERIMENTS.md, under the field's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualtalk_core.model.checkpoint import read_checkpoint_config
from dualtalk_core.model.model_config import PRESETS, replace_fields
from dualtalk_core.rigs import GROUPS


@dataclass
class TrainConfig:
    """Everything a run depends on besides the data and output folders; defaults = the paper's."""

    model_preset: str = "lite"  # "lite" | "official"
    model_overrides: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields
    init_from: str | None = None  # fine-tune: a model folder or DualTalk.pth instead of a preset
    train_split: str = "train"  # folder under DATA that the training windows come from
    val_split: str | None = "test"  # None: no validation, OUT/best is not written
    window_frames: int = 200  # frames per training window (25 fps: 8 s)
    overlap_frames: int = 0  # frames that consecutive windows of a clip share
    batch_size: int = 32  # per process
    epochs: int = 1000
    lr: float = 1e-4  # Adam
    lr_step_epochs: int = 50  # StepLR: the rate is multiplied by lr_gamma this often
    lr_gamma: float = 0.8
    # The recipe's terms: MSE of each group and of first differences over all channels.
    weight_exp: float = 1.0
    weight_jaw: float = 1.0
    weight_pose: float = 1.0
    weight_velocity: float = 1.0
    # Weight of each window's mean error in the EXP/JAW/POSE terms (not in the published recipe:
    # 1 = plain MSE); below 1 the loss asks mostly for the motion around a level voices hide.
    weight_window_mean: float = 1.0
    # Squared error of each window's per-channel standard deviation (not in the published recipe;
    # 0 = off): asks for the right spread where plain MSE rewards flattened motion.
    weight_dispersion: float = 0.0
    # Covariance part of each window's Frechet distance, per group (not in the published recipe;
    # 0 = off): matches how channels move together, most of FD EXP.
    weight_frechet: float = 0.0
    # Frechet term on the joint (partner, self) frames, as P-FD (not in the published recipe;
    # False): copying the partner then costs through the cross covariance.
    frechet_with_partner: bool = False
    # Groups the dispersion and Frechet terms apply to; a group left out gets its plain
    # regression (for motion nothing heard or seen causes).
    spread_groups: list[str] = field(default_factory=lambda: list(GROUPS))
    # Groups whose spread terms are (also) computed on a second run with the partner dropped
    # (not in the published recipe; empty = none): their liveliness must come from one's voice.
    spread_groups_without_partner: list[str] = field(default_factory=list)
    # Channels (rig names) the spread terms leave out whatever their group (not in the published
    # recipe; empty = none): for channels whose spread could only be met with noise (headYaw).
    spread_skip_channels: list[str] = field(default_factory=list)
    # Squared gap of window-mean head angles between runs with and without the partner (not in
    # the published recipe; 0 = off): a resting head angle is the person's own.
    weight_head_level: float = 0.0
    # Squared per-frame gap of those runs' head angles around their window means (not in the
    # published recipe; 0 = off): motion that only fills the spread comes from one's own voice.
    weight_head_motion: float = 0.0
    # Head channels (rig names) that `weight_head_motion` ties; None = every POSE channel.
    # Naming only the sway axes leaves the nod (headPitch) free to follow the partner.
    head_motion_channels: list[str] | None = None
    # Random gain, tilt, reverb and noise on both training audio tracks (not in the published
    # recipe; `dualtalk_core.training.augment`): voices and microphones the corpus lacks.
    audio_augment: bool = False
    # Probability that a training window's partner becomes silence and a still neutral face (not
    # in the published recipe; 0 = off): a robot without its partner is a learned case.
    partner_dropout: float = 0.0
    # Probability that a training window's partner face becomes still and neutral while their
    # voice stays (not in the published recipe; 0 = off): listening from the voice alone.
    partner_face_dropout: float = 0.0
    grad_clip_norm: float = 0.0  # 0 = off, as published
    eval_every_epochs: int = 1  # validate and write OUT/last (and OUT/best) this often
    log_every_steps: int = 10  # TensorBoard's per-step training loss, this often
    num_workers: int = 0  # DataLoader worker processes per rank
    cache_clips: bool = True  # hold every decoded clip in memory; False: read clips per window
    seed: int = 0  # initial weights, shuffling, dropout, augmentation: a run repeats exactly
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # DDP: None = True for the wav2vec2 front end, whose LayerDrop and SpecAugment leave some
    # weights without a gradient in some steps, else False.
    find_unused_parameters: bool | None = None
    autocast_bf16: bool = False  # CUDA only; not in the published (float32) recipe
    # A fresh model starts with a zero output layer biased to the mean training target (not in
    # the published recipe; False): a short CPU run need not spend epochs finding the level.
    init_head_from_data: bool = False

    def __post_init__(self) -> None:
        positive = ("window_frames", "batch_size", "epochs", "lr_step_epochs",
                    "eval_every_epochs", "log_every_steps")
        bad = [f"{n}={getattr(self, n)}" for n in positive if getattr(self, n) < 1]
        if bad or self.lr <= 0 or self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"TrainConfig: expected positive {positive}, lr > 0 and device in "
                             f"auto|cpu|cuda; got {bad}, lr={self.lr}, device={self.device!r}")
        unknown = sorted(set(self.spread_groups + self.spread_groups_without_partner)
                         - set(GROUPS))
        if unknown:
            raise ValueError(f"TrainConfig: spread_groups {unknown} are not among {GROUPS}")
        if self.weight_head_level < 0 or self.weight_head_motion < 0:
            raise ValueError(f"TrainConfig: weight_head_level and weight_head_motion must be "
                             f">= 0, got {self.weight_head_level}, {self.weight_head_motion}")
        for name in ("partner_dropout", "partner_face_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrainConfig: {name} is a probability in [0, 1], got "
                                 f"{getattr(self, name)}")
        if not 0.0 < self.weight_window_mean <= 1.0:
            raise ValueError("TrainConfig: weight_window_mean must be in (0, 1] (0 would leave "
                             f"the level unanchored), got {self.weight_window_mean}")


def front_end(cfg: TrainConfig, resume_dir: Path | None = None) -> str:
    """The audio front end of the model `cfg` trains, known before the model is built: it
    decides the data's preparation (wav2vec2 trains on whole-file normalised audio, as the
    release does; log-mel on raw audio)."""
    source = resume_dir if resume_dir is not None else cfg.init_from
    if source is None:
        return replace_fields(PRESETS[cfg.model_preset], cfg.model_overrides).front_end
    saved = read_checkpoint_config(source)
    return "wav2vec2" if saved is None else str(saved.get("front_end", "logmel"))
