"""GANomaly training: step-based, periodic validation on held-out normals and proxy anomalies, resume.

Losses (Akcay et al. 2018): the generator minimises ``w_adv * L_adv + w_con * L_con + w_lat * L_lat``
with L_adv the L2 distance of discriminator features of x and G(x) (feature matching), L_con the L1
reconstruction error and L_lat the L2 distance of the two encoder latents. The discriminator minimises
BCE on real versus reconstructed inputs and is re-initialised when its loss collapses.

G learns to remove synthetic anomalies painted on part of every batch (:mod:`gedge.reference.anomalies`); the
run's state and step are in :mod:`gedge.reference.training_run`, its settings in
:mod:`gedge.reference.train_config`.

Model selection never looks at the test set: every ``val_every`` steps the validation normals and proxy
anomalies painted on them (:mod:`gedge.data.proxy`) are scored with the reference scorer; the checkpoint whose
primary score (``d3_local`` unless ``--primary`` names another; ``auto``:
:func:`gedge.reference.validation.choose_score` at each validation) has the best proxy AUROC is kept, and the
decision rule is fitted on that validation's normal scores (:mod:`gedge.reference.decision_fit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from gedge import __version__
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import Dataset
from gedge.reference.checkpoint import Checkpoint
from gedge.reference.decision_fit import fit_decision_rule
from gedge.reference.model import ModelConfig
from gedge.reference.scoring import CameraInput
from gedge.reference.stopping import stop_notes
from gedge.reference.train_config import MEMORY_FORMAT, PRESETS, LossPreset, TrainConfig, resolve_device
from gedge.reference.training_run import TrainingData, TrainingRun, WeightAverage, train_step, training_data
from gedge.reference.validation import NOISE_AUROC, ValidationResult, Validator

__all__ = ["PRESETS", "LossPreset", "TrainCallbacks", "TrainConfig", "TrainResult", "WeightAverage", "train"]


@dataclass
class TrainResult:
    """The best checkpoint, every validation, the step the checkpoint comes from and the run's duration."""

    checkpoint: Checkpoint
    history: list[ValidationResult] = field(default_factory=list)
    best_step: int = 0
    seconds: float = 0.0
    stop_reason: str = ""  # what ended the run (step count, cap, time limit, plateau)
    notes: list[str] = field(default_factory=list)  # convergence warnings (gedge.reference.stopping.stop_notes)


@dataclass
class TrainCallbacks:
    """Hooks for progress display; the library never prints."""

    on_step: Callable[[int, dict[str, float]], None] | None = None
    on_validate: Callable[[ValidationResult], None] | None = None


def _facts(run: TrainingRun, data: TrainingData, config: TrainConfig, start_time: float) -> dict:
    """What the checkpoint records about its training: settings, data, selection history, versions."""
    return {
        "preset": config.preset, "losses": asdict(config.losses), "train_config": asdict(config),
        "data": str(data.dataset.root), "layout": data.dataset.layout,
        "n_train_images": len(data.train_paths), "n_validation_images": len(data.val_paths),
        "validation_images": [str(p) for p in data.val_paths],
        "contaminated_with": [str(p) for p in data.contaminants],
        "best_step": run.best["result"].step, "proxy_auroc": run.best["result"].proxy_auroc,
        "history": [asdict(h) for h in run.history], "d_resets": run.d_resets,
        "seconds": round(time.time() - start_time, 1), "torch_version": str(torch.__version__),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "gedge_version": __version__,
    }


def _best_checkpoint(run: TrainingRun, data: TrainingData, model_config: ModelConfig, config: TrainConfig,
                     start_time: float) -> Checkpoint:
    """The best validation's networks, with the decision rule fitted on its validation-normal scores."""
    best = run.best
    decision, stats = fit_decision_rule(best["normal_tiles"], best["normal_counts"], best["result"].best_score,
                                        config.threshold_quantile)
    return Checkpoint(model=model_config, preprocess=data.pre, decision=decision,
                      netg_state={k: v.cpu().contiguous() for k, v in best["netg"].items()},
                      netd_state={k: v.cpu().contiguous() for k, v in best["netd"].items()},
                      score_stats=stats, facts=_facts(run, data, config, start_time))


def train(dataset: Dataset, model_config: ModelConfig, pre: Preprocess, config: TrainConfig, out: Path,
          callbacks: TrainCallbacks | None = None) -> TrainResult:
    """Train on ``dataset``'s normal images and return the best checkpoint (not yet written to ``out``).

    The training state is saved next to ``out`` (``out.state``) at every validation; ``config.resume``
    continues from it.
    """
    callbacks = callbacks or TrainCallbacks()
    start_time = time.time()
    data = training_data(dataset, pre, config)
    device = resolve_device(config.device)
    run = TrainingRun.start(model_config, config, data, device)
    validator = Validator(data.val_images, data.pre, config.proxies_per_image, config.seed + 1, device,
                          config.primary)
    camera = CameraInput()
    state_path = out.with_name(out.name + ".state")
    if config.resume:
        run.restore(state_path, model_config)

    rule = config.stop_rule
    reason = rule.reason_to_stop(run.step, run.counted_selection(), 0.0) if run.history else None
    while reason is None:
        x = camera(torch.from_numpy(run.sampler.sample(config.batch_size)).to(device))
        x = x.contiguous(memory_format=MEMORY_FORMAT)
        losses = train_step(run, x, config.losses, config.anomalies)
        if callbacks.on_step:
            callbacks.on_step(run.step, losses)
        elapsed = time.time() - start_time
        at_cap = run.step >= rule.cap or (rule.time_limit_s is not None and elapsed >= rule.time_limit_s)
        if run.step % config.val_every == 0 or at_cap:
            result, normal_tiles, normal_counts = validator.run(*run.scoring_networks(config.ema), run.step)
            run.history.append(result)
            run.keep_if_best(result, normal_tiles, normal_counts, config.ema)
            if callbacks.on_validate:
                callbacks.on_validate(result)
            run.save(state_path, model_config)
            reason = rule.reason_to_stop(run.step, run.counted_selection(), elapsed, run.settled_now())

    run.best = run.chosen()
    best_step = run.best["result"].step
    notes = stop_notes([h.selection_auroc for h in run.history], [h.step for h in run.history], best_step, reason,
                       rule)
    if run.best["result"].selection_auroc < NOISE_AUROC:
        notes.append(f"selection is noise: proxy AUROC {run.best['result'].selection_auroc:.2f} at the kept checkpoint "
                     "(validation could not tell the painted proxy anomalies from normal images, so the checkpoint "
                     "and the score were chosen on no evidence); check the model on labelled images (gedge evaluate)")
    checkpoint = _best_checkpoint(run, data, model_config, config, start_time)
    checkpoint.facts.update(stop_reason=reason, steps_run=run.step, convergence_notes=notes, device=device)
    return TrainResult(checkpoint, run.history, best_step, time.time() - start_time, reason, notes)
