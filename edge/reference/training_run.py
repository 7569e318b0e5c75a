"""A training run's state and its step: the networks, optimisers, weight averages, sampler and the best
validations so far (all of it saved for resume), and one generator and discriminator update."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from gedge.core.atomic import atomic_path
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import Scores
from gedge.data.datasets import Dataset, split_validation
from gedge.data.sampling import PatchSampler
from gedge.data.survey import survey_images
from gedge.data.tiles import load_prepared
from gedge.reference.anomalies import paint_anomalies
from gedge.reference.model import ModelConfig, NetD, NetG, build_networks, init_weights
from gedge.reference.stopping import counted, reconstruction_settled, selected_index
from gedge.reference.train_config import MEMORY_FORMAT, LossPreset, TrainConfig
from gedge.reference.validation import ValidationResult


def _contaminants(dataset: Dataset, fraction: float, n_train: int, seed: int) -> list[Path]:
    """Abnormal test images mixed into training (a contaminated-data experiment), chosen with a seeded draw."""
    if fraction <= 0:
        return []
    pool = [] if dataset.test is None else [p for p, y in zip(dataset.test.paths, dataset.test.labels) if y == 1]
    want = int(round(fraction * n_train))
    if want > len(pool):
        raise ConfigError(f"contamination {fraction} needs {want} abnormal images, the data set has {len(pool)}")
    rng = np.random.default_rng(seed + 7)
    return sorted(pool[i] for i in rng.choice(len(pool), size=want, replace=False))


class WeightAverage:
    """Exponential moving average of a network's weights and BatchNorm statistics.

    GAN weights oscillate from step to step; D1/D2 read D's features, so scores from a single step are
    noisy. Scoring with averaged weights (Polyak averaging) makes validation, model selection and results
    across seeds far steadier.
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        live = module.state_dict()
        for key, avg in self.module.state_dict().items():
            if avg.dtype.is_floating_point:
                avg.mul_(self.decay).add_(live[key].detach(), alpha=1.0 - self.decay)
            else:
                avg.copy_(live[key])

    @torch.no_grad()
    def reset_to(self, module: torch.nn.Module) -> None:
        self.module.load_state_dict(module.state_dict())


@dataclass
class TrainingData:
    """The images one run trains and validates on, and where they came from (for the checkpoint's facts)."""

    dataset: Dataset
    pre: Preprocess
    train_paths: list[Path]
    val_paths: list[Path]
    contaminants: list[Path]
    train_images: list[np.ndarray]
    val_images: list[np.ndarray]


def training_data(dataset: Dataset, pre: Preprocess, config: TrainConfig) -> TrainingData:
    """Split off the validation normals, mix in contaminants, read and prepare every image once."""
    train_paths, val_paths = split_validation(dataset.train, config.val_fraction, config.seed)
    contaminants = _contaminants(dataset, config.contamination, len(train_paths), config.seed)
    if pre.mode == "resize" and pre.source_size is None:  # one training image size: recorded, and checked later
        sizes = set(survey_images(train_paths).sizes)
        if len(sizes) == 1:
            pre = replace(pre, source_size=sizes.pop())
    return TrainingData(dataset, pre, train_paths, val_paths, contaminants,
                         train_images=load_prepared(train_paths + contaminants, pre, convert=True),
                         val_images=load_prepared(val_paths, pre, convert=True))


@dataclass
class TrainingRun:
    """What a training run changes as it goes; the state file next to the output holds all of it (resume)."""

    netg: NetG
    netd: NetD
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sampler: PatchSampler
    avg_g: WeightAverage
    avg_d: WeightAverage
    step: int = 0
    history: list[ValidationResult] = field(default_factory=list)
    best: dict | None = None  # the best validation so far: result, weights, normal tile and image scores
    best_raw: dict | None = None  # the validation with the highest proxy AUROC, settled or not
    d_resets: int = 0
    anomaly_gen: torch.Generator = field(default_factory=torch.Generator)  # draws the synthetic anomalies

    @classmethod
    def start(cls, model_config: ModelConfig, config: TrainConfig, data: TrainingData, device: str) -> TrainingRun:
        """Fresh networks (seeded), their optimisers, the patch sampler and the weight averages."""
        torch.manual_seed(config.seed)
        netg, netd = build_networks(model_config, seed=config.seed)
        netg.to(device, memory_format=MEMORY_FORMAT)
        netd.to(device, memory_format=MEMORY_FORMAT)
        losses = config.losses
        opt_g = torch.optim.Adam(netg.parameters(), lr=losses.lr, betas=(losses.beta1, 0.999))
        opt_d = torch.optim.Adam(netd.parameters(), lr=losses.lr, betas=(losses.beta1, 0.999))
        sampler = PatchSampler(data.train_images, data.pre, seed=config.seed)
        return cls(netg, netd, opt_g, opt_d, sampler, WeightAverage(netg, config.ema), WeightAverage(netd, config.ema),
                   anomaly_gen=torch.Generator().manual_seed(config.seed + 11))

    def scoring_networks(self, ema: float) -> tuple[NetG, NetD]:
        """The networks validation scores and the checkpoint keeps: the averaged ones, or the live ones in eval."""
        if ema:
            return self.avg_g.module, self.avg_d.module
        return self.netg.eval(), self.netd.eval()

    def counted_selection(self) -> list[float]:
        """The selection AUROCs of the validations after G's reconstruction had settled (see
        :func:`gedge.reference.stopping.reconstruction_settled`): what the stop rule watches."""
        history = self.history
        settled = reconstruction_settled([h.recon_l1 for h in history], [h.step for h in history])
        return counted([h.selection_auroc for h in history], settled)

    def settled_now(self) -> bool:
        """Whether G's reconstruction had settled at the last validation (a plateau stops a run only then)."""
        history = self.history
        return bool(history) and reconstruction_settled([h.recon_l1 for h in history], [h.step for h in history])[-1]

    def keep_if_best(self, result: ValidationResult, normal_tiles: Scores, normal_counts: list[int],
                     ema: float) -> None:
        """Remember this validation's (the last in the history) networks and normal scores when it is the best so
        far: a validation after G's reconstruction has settled beats every one before it settled; among either
        kind, the higher proxy AUROC wins (so a short run that never settles keeps its best one, as before)."""
        history = self.history
        settled = reconstruction_settled([h.recon_l1 for h in history], [h.step for h in history])[-1]
        key = (settled, result.selection_auroc)
        keep_settled = self.best is None or key > self.best.get("key", (True, self.best["result"].selection_auroc))
        keep_raw = self.best_raw is None or result.selection_auroc > self.best_raw["result"].selection_auroc
        if not keep_settled and not keep_raw:
            return
        score_g, score_d = self.scoring_networks(ema)
        kept = {"result": result, "netg": copy.deepcopy(score_g.state_dict()),
                "netd": copy.deepcopy(score_d.state_dict()), "normal_tiles": normal_tiles,
                "normal_counts": normal_counts, "key": key}
        self.best = kept if keep_settled else self.best
        self.best_raw = kept if keep_raw else self.best_raw

    def chosen(self) -> dict:
        """The checkpoint the run ends with, by :func:`gedge.reference.stopping.selected_index`: the best settled
        validation (``best``), or the best of all (``best_raw``) when that one came from before G started to
        reconstruct. Both were kept as the validations came, since only their weights can be returned."""
        history = self.history
        index = selected_index([h.recon_l1 for h in history], [h.selection_auroc for h in history],
                               [h.step for h in history])
        return self.best if self.best["result"].step == history[index].step else self.best_raw

    def save(self, path: Path, model_config: ModelConfig) -> None:
        """Write the training state (atomically), so that a run can resume from this step."""
        payload = {"step": self.step, "netg": self.netg.state_dict(), "netd": self.netd.state_dict(),
                   "opt_g": self.opt_g.state_dict(), "avg_g": self.avg_g.module.state_dict(),
                   "avg_d": self.avg_d.module.state_dict(), "opt_d": self.opt_d.state_dict(),
                   "sampler": self.sampler.state(), "history": self.history, "best": self.best,
                   "best_raw": self.best_raw, "d_resets": self.d_resets, "model": model_config.to_dict(),
                   "rng": torch.get_rng_state(), "anomaly_rng": self.anomaly_gen.get_state()}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def restore(self, path: Path, model_config: ModelConfig) -> None:
        """Continue from a saved training state; it must have been made with the same model config."""
        if not path.is_file():
            raise ArtifactError("no training state to resume from", path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ArtifactError(f"training state is unreadable ({exc.__class__.__name__})", path) from None
        if payload.get("model") != model_config.to_dict():
            raise ArtifactError("training state was made with another model config", path)
        self.netg.load_state_dict(payload["netg"])
        self.netd.load_state_dict(payload["netd"])
        self.opt_g.load_state_dict(payload["opt_g"])
        self.opt_d.load_state_dict(payload["opt_d"])
        self.avg_g.module.load_state_dict(payload["avg_g"])
        self.avg_d.module.load_state_dict(payload["avg_d"])
        self.sampler.restore(payload["sampler"])
        torch.set_rng_state(payload["rng"])
        self.step, self.history, self.best = payload["step"], payload["history"], payload["best"]
        self.best_raw = payload.get("best_raw")
        self.d_resets = payload["d_resets"]
        if "anomaly_rng" in payload:
            self.anomaly_gen.set_state(payload["anomaly_rng"])


def train_step(run: TrainingRun, x: torch.Tensor, losses: LossPreset, anomalies: float) -> dict[str, float]:
    """One generator and one discriminator update on the batch ``x``; returns the losses.

    G sees the batch with synthetic anomalies on ``anomalies`` of its tiles (:mod:`gedge.reference.anomalies`) and
    is scored against the clean batch: its reconstruction, feature-matching and latent losses teach it to return
    what normally is there. D still tells the clean batch from G's output.

    D's pass over the real batch serves both updates (its features, detached, are G's feature-matching target; its
    logits are D's real term): D's weights do not change between the two, so this is the same arithmetic as two
    passes, at three D passes a step instead of four."""
    netg, netd = run.netg.train(), run.netd.train()
    fake, latent_i, latent_o = netg(paint_anomalies(x, anomalies, run.anomaly_gen) if anomalies else x)
    logit_real, feat_real = netd(x)
    _, feat_fake = netd(fake)
    loss_adv = F.mse_loss(feat_fake, feat_real.detach())
    loss_con = F.l1_loss(fake, x)
    loss_lat = F.mse_loss(latent_o, latent_i)
    loss_g = losses.w_adv * loss_adv + losses.w_con * loss_con + losses.w_lat * loss_lat
    run.opt_g.zero_grad(set_to_none=True)
    loss_g.backward(retain_graph=True)
    run.opt_g.step()

    logit_fake, _ = netd(fake.detach())
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                    + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
    run.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    run.opt_d.step()
    if loss_d.item() < 1e-5:  # D has collapsed: start it again (as the original GANomaly does)
        netd.apply(init_weights)
        run.avg_d.reset_to(netd)
        run.d_resets += 1
    run.avg_g.update(netg)
    run.avg_d.update(netd)
    run.step += 1
    return {"g": loss_g.item(), "d": loss_d.item(), "adv": loss_adv.item(), "con": loss_con.item(),
            "lat": loss_lat.item()}
