"""The seed paper's contamination study (Tang et al., Table I) as a library call: train with a fraction of defective
images mixed into the normal training data, evaluate on the rest, over several seeds, and summarise image AUROC
per score as mean and standard deviation, beside the paper's figures.

Each run trains with ``TrainConfig.contamination`` (that fraction of the training images, drawn from the data
set's defective test images with a seeded draw) and is evaluated on the test split without those images. Runs
write ``<out>/c<fraction>_s<seed>.pt`` and reuse a checkpoint that is already there, so a long study can be
stopped and continued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError
from gedge.core.scores import OUTPUT_NAMES
from gedge.reference.checkpoint import load_checkpoint
from gedge.reference.evaluate import EvaluationReport
from gedge.reference.train import TrainCallbacks
from gedge.reference.training_job import TrainRequest, prepare_training
from gedge.reference.workflows import prepare_evaluation

# Tang et al., Table I: GANomaly's image AUROC on MVTec AD wood with 0, 3, 6 and 9 % abnormal training images.
PAPER_WOOD = {0.0: 0.92, 0.03: 0.938, 0.06: 0.902, 0.09: 0.943}


@dataclass(frozen=True)
class StudyRequest:
    data: Path
    out: Path
    fractions: tuple[float, ...] = (0.0, 0.03, 0.06, 0.09)
    seeds: tuple[int, ...] = (0, 1, 2)
    train: TrainRequest | None = None  # the settings every run starts from (data, out and seed are replaced)

    def __post_init__(self) -> None:
        if not self.fractions or not self.seeds:
            raise ConfigError("the study needs at least one fraction and one seed")
        if any(not 0.0 <= f < 0.5 for f in self.fractions):
            raise ConfigError(f"fractions must be in [0, 0.5), got {list(self.fractions)}")


@dataclass
class StudyRun:
    fraction: float
    seed: int
    checkpoint: str
    contaminants: int
    best_step: int
    primary: str
    auroc: dict[str, float]  # image AUROC per output on the test split without the contaminants


@dataclass
class StudyResult:
    data: str
    runs: list[StudyRun] = field(default_factory=list)

    def summary(self) -> dict[float, dict[str, tuple[float, float]]]:
        """Per fraction, per output: (mean, std) of the image AUROC over the seeds."""
        out: dict[float, dict[str, tuple[float, float]]] = {}
        for fraction in sorted({r.fraction for r in self.runs}):
            rows = [r.auroc for r in self.runs if r.fraction == fraction]
            out[fraction] = {name: (float(np.mean([r[name] for r in rows])), float(np.std([r[name] for r in rows])))
                             for name in OUTPUT_NAMES}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "runs": [vars(r) for r in self.runs],
                "summary": {f"{f:g}": {n: {"mean": m, "std": s} for n, (m, s) in row.items()}
                            for f, row in self.summary().items()},
                "paper_wood_table_i": {f"{f:g}": v for f, v in PAPER_WOOD.items()}}


StudyProgress = Callable[[str, int, int], None]  # (what, step, total steps of that run)


def _run(request: StudyRequest, fraction: float, seed: int, progress: StudyProgress | None) -> StudyRun:
    base = request.train or TrainRequest(request.data, request.out / "unused.pt")
    out = request.out / f"c{fraction:g}_s{seed}.pt"
    if not out.is_file():
        config = replace(base.config, contamination=fraction, seed=seed)
        job = prepare_training(replace(base, data=request.data, out=out, config=config))
        cap = config.stop_rule.cap
        label = f"contamination {fraction:g}, seed {seed}"
        job.run(TrainCallbacks(on_step=(lambda step, _: progress(label, step, cap)) if progress else None))
    checkpoint = load_checkpoint(out)
    report: EvaluationReport = prepare_evaluation(out, request.data).run()
    return StudyRun(fraction, seed, str(out), len(checkpoint.facts.get("contaminated_with", [])),
                    int(checkpoint.facts.get("best_step", 0)), checkpoint.decision.primary, report.rows[0].auroc)


def contamination_study(request: StudyRequest, progress: StudyProgress | None = None) -> StudyResult:
    """Every (fraction, seed) run, trained (or reused) and evaluated. Seed by seed, every fraction of one seed
    before the next seed, so a study stopped early still compares every fraction."""
    request.out.mkdir(parents=True, exist_ok=True)
    result = StudyResult(str(request.data))
    for seed in request.seeds:
        for fraction in request.fractions:
            result.runs.append(_run(request, fraction, seed, progress))
    result.runs.sort(key=lambda run: (run.fraction, run.seed))
    return result
