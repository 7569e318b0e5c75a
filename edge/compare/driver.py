"""The one driver of every comparison: a reference and a candidate backend score the same images, cut into the
same tiles, and :func:`~gedge.compare.comparator.compare_scores` judges the scores.

``gedge parity`` (:mod:`gedge.compare.parity`), the accuracy gate of ``gedge calibrate`` and the parity an engine
build records in its manifest all call :func:`compare`. A gate compares several candidates against one reference,
so the reference may come as scores computed once (:func:`score_backend`) instead of a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gedge.compare.comparator import BackendScores, ImageSetFacts, ParityReport, compare_scores
from gedge.compare.limits import ParityLimits
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError
from gedge.core.preprocess import Preprocess
from gedge.core.timing import Stopwatch
from gedge.data.tiles import score_images

Progress = Callable[[int, int], None]


@dataclass
class ComparisonImages:
    """The images both sides score, prepared by ``preprocess`` (which also cuts them into tiles), and their facts."""

    images: list[np.ndarray]
    preprocess: Preprocess
    facts: ImageSetFacts


@dataclass(frozen=True)
class RunSettings:
    """How the backends are run: inference batch size and a progress callback (done, total)."""

    batch_size: int = 64
    progress: Progress | None = None


def score_backend(backend: Backend, images: ComparisonImages, settings: RunSettings = RunSettings()) -> BackendScores:
    """One backend's scores of the images: per network input and per image, and how long that took."""
    watch = Stopwatch()
    per_image, per_input = score_images(backend, images.images, images.preprocess, settings.batch_size,
                                        settings.progress)
    return BackendScores(per_input, per_image, backend.name, watch.seconds(3))


def compare(reference: Backend | BackendScores, candidate: Backend, images: ComparisonImages,
            limits: ParityLimits, settings: RunSettings = RunSettings()) -> ParityReport:
    """Score ``images`` with the candidate (and with the reference, unless its scores are given) and compare.

    The report carries both scoring times and the candidate's own notes (e.g. FP16 emulated on the CPU). The
    caller opened the backends and closes them.
    """
    if not isinstance(reference, BackendScores):
        if reference.input_spec != candidate.input_spec:
            raise ConfigError(f"reference takes {reference.input_spec} but candidate takes {candidate.input_spec}")
        reference = score_backend(reference, images, settings)
    scored = score_backend(candidate, images, settings)
    report = compare_scores(reference, scored, images.facts, limits)
    report.notes = list(candidate.info.notes)
    return report
