"""GANomaly training: step-based, periodic validation on held-out normals and proxy anomalies, resume.

Losses (Akcay et al. 2018): the generator minimises ``w_adv * L_adv + w_con * L_con + w_lat * L_lat``
with L_adv the L2 distance of discriminator features of x and G(x) (feature matching), L_con the L1
reconstruction error and L_lat the L2 distance of the two encoder latents. The discriminator minimises
BCE on real versus reconstructed inputs and is re-initialised when its loss collapses.

Model selection never looks at the test set: every ``val_every`` steps the validation normals and proxy
anomalies painted on them (:mod:`gedge.proxy`) are scored; the checkpoint with the best proxy AUROC is
kept, and the score with the best proxy AUROC at that point becomes the primary score.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from gedge import __version__
from gedge.core.atomic import atomic_path
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.metrics import auroc
from gedge.core.preprocess import Preprocess
from gedge.core.scores import SCORE_NAMES, Scores, aggregate_max
from gedge.data.datasets import Dataset, split_validation
from gedge.data.images import read_image
from gedge.data.proxy import proxy_set
from gedge.data.sampling import PatchSampler
from gedge.data.tiles import load_prepared, network_inputs
from gedge.reference.checkpoint import Checkpoint
from gedge.reference.decision_fit import fit_decision_rule
from gedge.reference.model import ModelConfig, NetD, NetG, build_networks, init_weights
from gedge.reference.scoring import CameraInput, FusedScorer


@dataclass(frozen=True)
class LossPreset:
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
    preset: str = "gedge"
    steps: int = 2000
    batch_size: int = 32
    val_every: int = 200
    val_fraction: float = 0.15
    proxies_per_image: int = 3
    seed: int = 0
    contamination: float = 0.0
    threshold_quantile: float = 0.99
    device: str = "cpu"
    lr: float | None = None  # overrides the preset
    ema: float = 0.99  # exponential moving average of G and D weights used for scoring; 0 disables

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.steps < 1 or self.batch_size < 2 or self.val_every < 1:
            raise ConfigError("steps and val_every must be >= 1 and batch size >= 2")
        if not 0.0 <= self.contamination < 0.5:
            raise ConfigError(f"contamination must be in [0, 0.5), got {self.contamination}")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if not 0.5 <= self.threshold_quantile <= 1.0:
            raise ConfigError(f"threshold quantile must be in [0.5, 1], got {self.threshold_quantile}")

    @property
    def losses(self) -> LossPreset:
        preset = PRESETS[self.preset]
        return preset if self.lr is None else LossPreset(**{**asdict(preset), "lr": self.lr})


@dataclass
class ValidationResult:
    step: int
    proxy_auroc: dict[str, float]
    best_score: str
    selection_auroc: float
    recon_l1: float


@dataclass
class TrainResult:
    checkpoint: Checkpoint
    history: list[ValidationResult] = field(default_factory=list)
    best_step: int = 0
    seconds: float = 0.0


@dataclass
class TrainCallbacks:
    """Hooks for progress display; the library never prints."""

    on_step: Callable[[int, dict[str, float]], None] | None = None
    on_validate: Callable[[ValidationResult], None] | None = None


class _Validator:
    """Validation normals and their proxy anomalies, prepared once; scores a G/D pair on them."""

    def __init__(self, images: list[np.ndarray], pre: Preprocess, proxies_per_image: int, seed: int,
                 device: torch.device) -> None:
        self.pre = pre
        self.device = device
        proxies = proxy_set(images, proxies_per_image, seed)
        self.normal_inputs, self.normal_counts = network_inputs(images, pre)
        self.proxy_inputs, self.proxy_counts = network_inputs(proxies, pre)
        self.labels = np.r_[np.zeros(len(images)), np.ones(len(proxies))]
        self.camera = CameraInput()

    @torch.inference_mode()
    def tile_scores(self, netg: NetG, netd: NetD, inputs: np.ndarray) -> Scores:
        scorer = FusedScorer(netg, netd, DecisionRule())
        parts = []
        for start in range(0, len(inputs), 128):
            x = self.camera(torch.from_numpy(inputs[start:start + 128]).to(self.device))
            outputs = scorer(x)
            names = (*SCORE_NAMES, "score")
            parts.append(Scores.from_dict({n: t.cpu().numpy() for n, t in zip(names, outputs, strict=True)}))
        return Scores.concat(parts)

    def run(self, netg: NetG, netd: NetD, step: int) -> tuple[ValidationResult, Scores, Scores]:
        normal_tiles = self.tile_scores(netg, netd, self.normal_inputs)
        proxy_tiles = self.tile_scores(netg, netd, self.proxy_inputs)
        normal = aggregate_max(normal_tiles, self.normal_counts)
        proxy = aggregate_max(proxy_tiles, self.proxy_counts)
        per_score = {s: auroc(self.labels, np.r_[normal.named(s), proxy.named(s)]) for s in SCORE_NAMES}
        best = max(SCORE_NAMES, key=lambda s: (per_score[s], -SCORE_NAMES.index(s)))
        result = ValidationResult(step, per_score, best, per_score[best], float(normal_tiles.d3.mean()))
        return result, normal_tiles, normal


def _contaminants(dataset: Dataset, fraction: float, n_train: int, seed: int) -> list[Path]:
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


def _train_state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def train(dataset: Dataset, model_config: ModelConfig, pre: Preprocess, config: TrainConfig, out: Path,
          callbacks: TrainCallbacks | None = None, resume: bool = False) -> TrainResult:
    """Train on ``dataset``'s normal images and return the best checkpoint (not yet written to ``out``)."""
    callbacks = callbacks or TrainCallbacks()
    start_time = time.time()
    device = torch.device(config.device)
    losses = config.losses
    train_paths, val_paths = split_validation(dataset.train, config.val_fraction, config.seed)
    contaminants = _contaminants(dataset, config.contamination, len(train_paths), config.seed)
    if pre.mode == "resize" and pre.source_size is None:  # record the training image size once
        first = read_image(train_paths[0], pre.channels)
        pre = replace(pre, source_size=(int(first.shape[0]), int(first.shape[1])))
    train_images = load_prepared(train_paths + contaminants, pre)
    val_images = load_prepared(val_paths, pre)

    torch.manual_seed(config.seed)
    netg, netd = build_networks(model_config, seed=config.seed)
    netg.to(device)
    netd.to(device)
    opt_g = torch.optim.Adam(netg.parameters(), lr=losses.lr, betas=(losses.beta1, 0.999))
    opt_d = torch.optim.Adam(netd.parameters(), lr=losses.lr, betas=(losses.beta1, 0.999))
    sampler = PatchSampler(train_images, pre, seed=config.seed)
    validator = _Validator(val_images, pre, config.proxies_per_image, config.seed + 1, device)
    camera = CameraInput()

    step, history, d_resets = 0, [], 0
    best: dict | None = None
    state_path = _train_state_path(out)
    avg_g, avg_d = WeightAverage(netg, config.ema), WeightAverage(netd, config.ema)
    if resume:
        step, history, best, d_resets = _restore(state_path, netg, netd, opt_g, opt_d, sampler, model_config,
                                                 avg_g, avg_d)

    while step < config.steps:
        netg.train()
        netd.train()
        x = camera(torch.from_numpy(sampler.sample(config.batch_size)).to(device))
        fake, latent_i, latent_o = netg(x)
        _, feat_real = netd(x)
        _, feat_fake = netd(fake)
        loss_adv = F.mse_loss(feat_fake, feat_real.detach())
        loss_con = F.l1_loss(fake, x)
        loss_lat = F.mse_loss(latent_o, latent_i)
        loss_g = losses.w_adv * loss_adv + losses.w_con * loss_con + losses.w_lat * loss_lat
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        logit_real, _ = netd(x)
        logit_fake, _ = netd(fake.detach())
        loss_d = 0.5 * (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                        + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if loss_d.item() < 1e-5:  # D has collapsed: start it again (as the original GANomaly does)
            netd.apply(init_weights)
            avg_d.reset_to(netd)
            d_resets += 1
        avg_g.update(netg)
        avg_d.update(netd)
        step += 1
        if callbacks.on_step:
            callbacks.on_step(step, {"g": loss_g.item(), "d": loss_d.item(), "adv": loss_adv.item(),
                                     "con": loss_con.item(), "lat": loss_lat.item()})

        if step % config.val_every == 0 or step == config.steps:
            score_g, score_d = (avg_g.module, avg_d.module) if config.ema else (netg.eval(), netd.eval())
            result, normal_tiles, normal_images = validator.run(score_g, score_d, step)
            history.append(result)
            if best is None or result.selection_auroc > best["result"].selection_auroc:
                best = {"result": result, "netg": copy.deepcopy(score_g.state_dict()),
                        "netd": copy.deepcopy(score_d.state_dict()), "normal_tiles": normal_tiles,
                        "normal_images": normal_images}
            if callbacks.on_validate:
                callbacks.on_validate(result)
            _save_state(state_path, step, netg, netd, opt_g, opt_d, sampler, history, best, d_resets, model_config,
                        avg_g, avg_d)

    assert best is not None
    decision, stats = fit_decision_rule(best["normal_tiles"], best["normal_images"], best["result"].best_score,
                                          config.threshold_quantile)
    facts = {
        "preset": config.preset, "losses": asdict(losses), "train_config": asdict(config),
        "data": str(dataset.root), "layout": dataset.layout,
        "n_train_images": len(train_paths), "n_validation_images": len(val_paths),
        "validation_images": [str(p) for p in val_paths],
        "contaminated_with": [str(p) for p in contaminants],
        "best_step": best["result"].step, "proxy_auroc": best["result"].proxy_auroc,
        "history": [asdict(h) for h in history], "d_resets": d_resets,
        "seconds": round(time.time() - start_time, 1), "torch_version": str(torch.__version__),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "gedge_version": __version__,
    }
    checkpoint = Checkpoint(model=model_config, preprocess=pre, decision=decision,
                            netg_state={k: v.cpu() for k, v in best["netg"].items()},
                            netd_state={k: v.cpu() for k, v in best["netd"].items()},
                            score_stats=stats, facts=facts)
    return TrainResult(checkpoint, history, best["result"].step, time.time() - start_time)


def _save_state(path: Path, step: int, netg, netd, opt_g, opt_d, sampler: PatchSampler, history, best,
                d_resets: int, model_config: ModelConfig, avg_g: WeightAverage, avg_d: WeightAverage) -> None:
    payload = {"step": step, "netg": netg.state_dict(), "netd": netd.state_dict(), "opt_g": opt_g.state_dict(),
               "avg_g": avg_g.module.state_dict(), "avg_d": avg_d.module.state_dict(),
               "opt_d": opt_d.state_dict(), "sampler": sampler.state(), "history": history, "best": best,
               "d_resets": d_resets, "model": model_config.to_dict(), "rng": torch.get_rng_state()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _restore(path: Path, netg, netd, opt_g, opt_d, sampler: PatchSampler, model_config: ModelConfig,
             avg_g: WeightAverage, avg_d: WeightAverage):
    if not path.is_file():
        raise ArtifactError("no training state to resume from", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ArtifactError(f"training state is unreadable ({exc.__class__.__name__})", path) from None
    if payload.get("model") != model_config.to_dict():
        raise ArtifactError("training state was made with another model config", path)
    netg.load_state_dict(payload["netg"])
    netd.load_state_dict(payload["netd"])
    opt_g.load_state_dict(payload["opt_g"])
    opt_d.load_state_dict(payload["opt_d"])
    avg_g.module.load_state_dict(payload["avg_g"])
    avg_d.module.load_state_dict(payload["avg_d"])
    sampler.restore(payload["sampler"])
    torch.set_rng_state(payload["rng"])
    return payload["step"], payload["history"], payload["best"], payload["d_resets"]
