"""``gedge parity``: does a deployed graph, IR or engine give the reference's numbers on a data set?

:func:`open_parity` opens both sides (the torch reference from the checkpoint, the candidate on its own backend),
both given as the :class:`~gedge.core.artifacts.Artifact` gedge read, checks that they are the same model (the
candidate's lineage names the checkpoint it was made from), and loads the images: the data set's test split
(with labels, so AUROC is compared) if it has one, else all its images. Bad input fails there, before any
scoring. :func:`run_parity` then drives the comparison (:func:`gedge.compare.driver.compare`) with the limits of
the candidate's precision unless others are asked for. :func:`parity_check` does both and closes the backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gedge.compare.backends import artifact_precision, open_candidate, open_reference
from gedge.compare.comparator import ImageSetFacts, ParityReport
from gedge.compare.driver import ComparisonImages, Progress, RunSettings, compare
from gedge.compare.limits import ParityLimits, limits_for
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.verdicts import Verification
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError, DataError
from gedge.data.datasets import open_dataset
from gedge.data.images import list_images
from gedge.data.tiles import load_prepared


@dataclass
class ParityData:
    paths: list[Path]
    labels: np.ndarray | None
    description: str


def parity_data(data: str | Path) -> ParityData:
    """The images parity runs on: the data set's test split (with labels) if it has one, else all its images."""
    data = Path(data)
    if not data.exists():
        raise DataError("data folder does not exist", data)
    if not data.is_dir():
        raise DataError("give a data folder (MVTec AD layout, class folders or a folder of images)", data)
    try:
        dataset = open_dataset(data)
    except DataError:
        dataset = None
    if dataset is not None and dataset.test is not None:
        return ParityData(list(dataset.test.paths), dataset.test.labels, f"{data} (test split)")
    if dataset is not None:
        return ParityData(list(dataset.train), None, f"{data} (training images; no test split)")
    return ParityData(list_images(data), None, f"{data} (all images)")


@dataclass(frozen=True)
class ParityRequest:
    """What ``gedge parity`` is asked: the reference checkpoint, the candidate model file, the data, and limits."""

    reference: Artifact  # a gedge checkpoint (.pt)
    candidate: Artifact  # an ONNX graph, an OpenVINO IR (.xml) or a TensorRT engine
    data: Path
    precision: str | None = None  # the limits of this precision (default: the candidate's)
    limit_overrides: dict[str, float | None] = field(default_factory=dict)  # max_rel_l2, min_spearman, ...
    batch_size: int = 64
    threads: int = 0  # the candidate backend's CPU threads (0: its default)
    force: bool = False  # run a candidate whose recorded verdict (gate, parity) failed


@dataclass
class ParitySetup:
    """Both sides opened and checked, the images loaded, the limits chosen: everything but the scoring."""

    reference: Backend
    candidate: Backend
    images: ComparisonImages
    limits: ParityLimits
    notes: list[str]
    batch_size: int = 64
    verification: Verification | None = None  # the candidate's verification (hashes, recorded verdicts, forced)

    def close(self) -> None:
        self.reference.close()
        self.candidate.close()


def _same_model_notes(candidate: Artifact, reference: Artifact) -> list[str]:
    """ConfigError when the candidate is another model; a note when it was exported from another checkpoint."""
    if candidate.facts is None or candidate.kind == "served":
        return []
    model, lineage = candidate.model, candidate.lineage
    if model and model != reference.model:
        raise ConfigError(f"the graph's model config differs from the checkpoint's: {model} vs {reference.model}")
    if lineage.checkpoint_sha256 and lineage.checkpoint_sha256 != reference.sha256:
        return [f"the graph was exported from {lineage.checkpoint} (sha256 {lineage.checkpoint_sha256[:12]}), not "
                "from this checkpoint"]
    return []


def open_parity(request: ParityRequest, candidate: Backend | None = None) -> ParitySetup:
    """Open the reference and (unless an opened ``candidate`` is given) the candidate, check them (the registry
    refuses a candidate whose recorded verdict failed, unless ``request.force``), load the images. A given candidate
    is closed with the setup."""
    verified = None
    if candidate is None:
        verified = request.candidate.verified(request.force)
        candidate = open_candidate(request.candidate, request.threads, request.force)
    reference = None
    try:
        info = candidate.info
        reference = open_reference(request.reference, with_amap=info.with_amap)
        notes = _same_model_notes(request.candidate, request.reference)
        source = parity_data(request.data)
        prepared = load_prepared(source.paths, request.reference.preprocess)
    except BaseException:
        candidate.close()
        if reference is not None:
            reference.backend.close()
        raise
    limits = limits_for(request.precision or artifact_precision(info), **request.limit_overrides)
    facts = ImageSetFacts(request.reference.threshold, source.labels, [p.name for p in source.paths],
                          source.description)
    images = ComparisonImages(prepared, request.reference.preprocess, facts)
    return ParitySetup(reference.backend, candidate, images, limits, notes, request.batch_size, verified)


def run_parity(setup: ParitySetup, progress: Progress | None = None) -> ParityReport:
    """Score with both sides and compare; the report notes the candidate's facts and the setup's."""
    report = compare(setup.reference, setup.candidate, setup.images, setup.limits,
                     RunSettings(setup.batch_size, progress))
    report.notes = [*report.notes, *setup.notes]
    report.verification = setup.verification
    return report


def parity_check(request: ParityRequest, progress: Progress | None = None) -> ParityReport:
    """``gedge parity`` as one call: open, compare, close."""
    setup = open_parity(request)
    try:
        return run_parity(setup, progress)
    finally:
        setup.close()
