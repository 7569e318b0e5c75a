"""The cross-material quality study (`gedge study quality`): train every data set with the same settings over several
seeds, evaluate each run on its test split, and summarise image AUROC per material as mean, standard deviation and
spread over the seeds: of the primary score each run chose, and of every candidate score it could have chosen.

This is how a change to the model or to training is judged: on all materials at once, never on one. Runs write
``<out>/<material>_s<seed>.pt`` (with the evaluation beside it, ``.quality.json``) and reuse what is already there,
so a long study can be stopped and continued.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.atomic import write_json
from gedge.core.errors import ConfigError
from gedge.core.scores import CANDIDATE_SCORES
from gedge.reference.checkpoint import load_checkpoint
from gedge.reference.train import TrainCallbacks
from gedge.reference.training_job import TrainRequest, prepare_training
from gedge.reference.workflows import prepare_evaluation


@dataclass(frozen=True)
class QualityRequest:
    data: tuple[Path, ...]
    out: Path
    seeds: tuple[int, ...] = (0, 1, 2)
    train: TrainRequest | None = None  # the settings every run starts from (data, out and seed are replaced)

    def __post_init__(self) -> None:
        if not self.data or not self.seeds:
            raise ConfigError("the study needs at least one data set and one seed")

    def materials(self) -> list[tuple[str, Path]]:
        """(name, folder) per data set: the folder's name, numbered where two folders share a name."""
        out, seen = [], {}
        for folder in self.data:
            name = Path(folder).resolve().name or "data"
            seen[name] = seen.get(name, 0) + 1
            out.append((name if seen[name] == 1 else f"{name}-{seen[name]}", Path(folder)))
        return out


@dataclass
class QualityRun:
    """One training run and its evaluation on the test split."""

    material: str
    seed: int
    checkpoint: str
    primary: str  # the score the run chose on validation
    auroc: float  # image AUROC of the chosen (primary) score
    candidates: dict[str, float]  # image AUROC of every candidate score
    pixel_auroc: float | None
    pro: float | None
    settings: dict[str, Any]  # input settings, best step, steps run, what stopped the run
    train_seconds: float

    @property
    def test_best(self) -> str:
        return max(self.candidates, key=lambda name: (self.candidates[name], -CANDIDATE_SCORES.index(name)))


@dataclass
class MaterialSummary:
    material: str
    data: str
    runs: int
    primary: tuple[float, float, float]  # mean, std, spread (max - min) of the chosen score's AUROC
    candidates: dict[str, tuple[float, float]]  # per candidate: mean, std
    chosen: list[str]  # the primary score of each run
    choice_is_best: int  # runs whose chosen score is the test-best candidate (within 0.002)
    pixel_auroc: float | None
    pro: float | None
    train_seconds: float  # mean over runs
    settings: dict[str, Any] = field(default_factory=dict)  # the first run's input settings


def _mean_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def summarise(material: str, data: str, runs: list[QualityRun]) -> MaterialSummary:
    primary = np.array([r.auroc for r in runs])
    names = [n for n in CANDIDATE_SCORES if all(n in r.candidates for r in runs)]
    candidates = {n: (float(np.mean([r.candidates[n] for r in runs])), float(np.std([r.candidates[n] for r in runs])))
                  for n in names}
    best = sum(1 for r in runs if r.auroc >= r.candidates[r.test_best] - 0.002)
    return MaterialSummary(material, data, len(runs), (float(primary.mean()), float(primary.std()),
                                                       float(primary.max() - primary.min())),
                           candidates, [r.primary for r in runs], best, _mean_or_none([r.pixel_auroc for r in runs]),
                           _mean_or_none([r.pro for r in runs]), float(np.mean([r.train_seconds for r in runs])),
                           runs[0].settings)


@dataclass
class QualityResult:
    runs: list[QualityRun] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)  # material -> folder

    def summary(self) -> list[MaterialSummary]:
        return [summarise(m, self.data[m], [r for r in self.runs if r.material == m]) for m in self.data
                if any(r.material == m for r in self.runs)]

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [asdict(r) for r in self.runs], "summary": [asdict(s) for s in self.summary()]}


QualityProgress = Callable[[str, int, int], None]  # (what, step, total steps of that run)


def _evaluate(material: str, seed: int, out: Path, data: Path) -> QualityRun:
    """The run's evaluation, read from ``<out>.quality.json`` when it is newer than the checkpoint."""
    cached = out.with_name(out.name + ".quality.json")
    if cached.is_file() and cached.stat().st_mtime >= out.stat().st_mtime:
        return QualityRun(**json.loads(cached.read_text()))
    checkpoint = load_checkpoint(out)
    report = prepare_evaluation(out, data).run()
    where = report.localisation.get("all")
    facts = checkpoint.facts
    settings = {"preprocess": checkpoint.preprocess.to_dict(), "best_step": facts.get("best_step"),
                "steps_run": facts.get("steps_run"), "stop_reason": facts.get("stop_reason")}
    run = QualityRun(material, seed, str(out), checkpoint.decision.primary, report.rows[0].auroc["score"],
                     report.candidates, where.pixel_auroc if where else None, where.pro if where else None,
                     settings, float(facts.get("seconds", 0.0)))
    write_json(cached, asdict(run))
    return run


def _run(request: QualityRequest, material: str, data: Path, seed: int,
         progress: QualityProgress | None) -> QualityRun:
    base = request.train or TrainRequest(data, request.out / "unused.pt")
    out = request.out / f"{material}_s{seed}.pt"
    if not out.is_file():
        config = replace(base.config, seed=seed)
        job = prepare_training(replace(base, data=data, out=out, config=config))
        cap = config.stop_rule.cap
        label = f"{material}, seed {seed}"
        job.run(TrainCallbacks(on_step=(lambda step, _: progress(label, step, cap)) if progress else None))
    return _evaluate(material, seed, out, data)


def quality_study(request: QualityRequest, progress: QualityProgress | None = None) -> QualityResult:
    """Every (data set, seed) run, trained (or reused) and evaluated; seed by seed, so a study stopped early has
    compared every material."""
    request.out.mkdir(parents=True, exist_ok=True)
    materials = request.materials()
    for _, folder in materials:  # bad input fails before hours of training
        prepare_training(replace(request.train or TrainRequest(folder, request.out / "unused.pt"), data=folder))
    result = QualityResult(data={m: str(f) for m, f in materials})
    for seed in request.seeds:
        for material, folder in materials:
            result.runs.append(_run(request, material, folder, seed, progress))
    result.runs.sort(key=lambda r: ([m for m, _ in materials].index(r.material), r.seed))
    return result


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def markdown(result: QualityResult, command: str = "") -> str:
    """The study as Markdown tables (for docs/results.md): one row per material."""
    rows = result.summary()
    names = [n for n in CANDIDATE_SCORES if all(n in s.candidates for s in rows)]
    lines = []
    if command:
        lines += [f"`{command}`", ""]
    lines += ["| material | runs | primary (chosen) | spread | chosen scores | choice = test best | pixel AUROC | "
              "PRO | settings | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        pre = s.settings.get("preprocess", {})
        setting = f"{pre.get('mode')} {pre.get('isize')} px, scale {pre.get('scale')}"
        pixel = "-" if s.pixel_auroc is None else f"{s.pixel_auroc:.3f}"
        pro = "-" if s.pro is None else f"{s.pro:.3f}"
        lines.append(f"| {s.material} | {s.runs} | {_pm(s.primary[0], s.primary[1])} | {s.primary[2]:.3f} | "
                     f"{', '.join(s.chosen)} | {s.choice_is_best} of {s.runs} | {pixel} | {pro} | {setting} | "
                     f"{s.train_seconds:.0f} |")
    lines += ["", "| material | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for s in rows:
        lines.append(f"| {s.material} | " + " | ".join(_pm(*s.candidates[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"
