"""How a training run is set up: loss presets, the training settings (:class:`TrainConfig`) and the device."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from gedge.core.errors import ConfigError
from gedge.core.scores import CANDIDATE_SCORES
from gedge.reference.stopping import StopRule
from gedge.reference.validation import AUTO_PRIMARY, DEFAULT_SCORE

# Networks and batches in channels-last layout, the layout oneDNN's CPU convolutions work in (docs/training.md).
MEMORY_FORMAT = torch.channels_last


def resolve_device(device: str) -> str:
    """``auto``: the GPU when torch sees one, else the CPU; ``cuda`` without a GPU is refused in one line."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: torch sees no CUDA GPU here (use --device cpu or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


@dataclass(frozen=True)
class LossPreset:
    """Loss weights (adversarial feature matching, reconstruction, latent) and the Adam settings."""

    w_adv: float
    w_con: float
    w_lat: float
    lr: float
    beta1: float


PRESETS: dict[str, LossPreset] = {
    # Tang et al. (the seed paper), section III.D: lambda_adv 20, lambda_con 1, lambda_lat 1, Adam lr 1e-3
    # (Keras defaults otherwise, beta1 0.9).
    "paper": LossPreset(w_adv=20.0, w_con=1.0, w_lat=1.0, lr=1e-3, beta1=0.9),
    # gedge's default: the paper's loss weights with a 5x lower learning rate. With lr 1e-3 the validation
    # AUROC of real-wood runs swung by 0.2 between checkpoints 150 steps apart; at 2e-4 it rises steadily
    # and the reconstruction error ends lower (see the README's training notes).
    "gedge": LossPreset(w_adv=20.0, w_con=1.0, w_lat=1.0, lr=2e-4, beta1=0.9),
    # Akcay et al. 2018 / the original code: w_adv 1, w_con 50, w_lat 1, lr 2e-4, beta1 0.5.
    "akcay": LossPreset(w_adv=1.0, w_con=50.0, w_lat=1.0, lr=2e-4, beta1=0.5),
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: loss preset, steps, batches, validation, seeds, contamination, threshold quantile, device.

    ``resume`` continues from the training state saved next to the output (``<out>.state``).
    """

    preset: str = "gedge"
    steps: int | None = None  # None: --steps auto, stop on a validation plateau (gedge.reference.stopping)
    batch_size: int = 32
    val_every: int = 150
    val_fraction: float = 0.15
    proxies_per_image: int = 3
    seed: int = 0
    contamination: float = 0.0
    threshold_quantile: float = 0.99
    device: str = "auto"  # auto: the GPU when torch sees one, else the CPU
    lr: float | None = None  # overrides the preset
    ema: float = 0.99  # exponential moving average of G and D weights used for scoring; 0 disables
    resume: bool = False
    max_steps: int = 6000  # --steps auto: the most steps
    time_limit_s: float | None = 3600.0  # the longest a run may take (None: no limit)
    patience: int = 5  # --steps auto: validations without improvement before the run stops
    anomalies: float = 0.5  # share of each batch with a synthetic anomaly G learns to remove (0: plain GANomaly)
    primary: str = DEFAULT_SCORE  # the primary score, or AUTO_PRIMARY: chosen on the proxy anomalies (choose_score)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.batch_size < 2 or self.val_every < 1:
            raise ConfigError("val_every must be >= 1 and batch size >= 2")
        self.stop_rule  # noqa: B018 - validates the stopping settings now
        if not 0.0 <= self.contamination < 0.5:
            raise ConfigError(f"contamination must be in [0, 0.5), got {self.contamination}")
        if not 0.0 <= self.anomalies <= 1.0:
            raise ConfigError(f"anomalies (the share of each batch painted) must be in [0, 1], got {self.anomalies}")
        if self.primary != AUTO_PRIMARY and self.primary not in CANDIDATE_SCORES:
            raise ConfigError(f"primary must be {AUTO_PRIMARY} or one of {', '.join(CANDIDATE_SCORES)}, "
                              f"got {self.primary!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if not 0.5 <= self.threshold_quantile <= 1.0:
            raise ConfigError(f"threshold quantile must be in [0.5, 1], got {self.threshold_quantile}")

    @property
    def stop_rule(self) -> StopRule:
        return StopRule(self.steps, self.max_steps, self.time_limit_s, self.patience)

    @property
    def losses(self) -> LossPreset:
        """The preset's losses, with ``lr`` overriding its learning rate when given."""
        preset = PRESETS[self.preset]
        return preset if self.lr is None else LossPreset(**{**asdict(preset), "lr": self.lr})
