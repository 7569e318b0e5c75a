"""One `gedge inspect` run as a library call: open the model's backend, inspect every image, summarise.

:class:`InspectRequest` is everything the command line gives; :class:`InspectionSession` reads the model file once
(:func:`gedge.runtime.registry.open_model`: its hashes checked, its verdicts read), opens the backend from it (the
file's own, or the fastest installed CPU backend for a graph, measured at the run's batch size), yields one
:class:`~gedge.inspection.inspector.ImageReport` per image as it is done (so ``--json`` streams), scores the
reports against a line-scan ground truth when one is given, and closes the backend. :meth:`InspectionSession.result`
is the summary the CLI renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts import Artifact
from gedge.core.artifacts.verdicts import Verification
from gedge.core.errors import ConfigError, DataError, RuntimeFailure
from gedge.data.images import expand_inputs
from gedge.data.strip_truth import StripScore, read_truth, score_strip
from gedge.inspection.inspector import ImageReport, InspectOptions, Inspector, InspectSummary
from gedge.runtime.registry import auto_backend, open_backend, open_model

BACKEND_CHOICES = ("torch", "torch-cuda", "onnxruntime", "openvino", "tensorrt")


@dataclass(frozen=True)
class BackendRequest:
    """Which backend runs the model, and how (the command line's backend options)."""

    kind: str | None = None  # None: the file's own; for a graph the fastest installed CPU backend
    device: str = "cpu"  # torch device for a checkpoint
    threads: int = 0
    performance: str = "latency"  # OpenVINO hint
    streams: int = 0  # OpenVINO streams with the throughput hint
    force: bool = False  # run an artifact whose recorded verdict (INT8 gate, engine parity) failed

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in BACKEND_CHOICES:
            raise ConfigError(f"--backend must be one of {', '.join(BACKEND_CHOICES)}, got {self.kind!r}")


@dataclass(frozen=True)
class InspectRequest:
    model: Path
    inputs: tuple[Path, ...]
    options: InspectOptions = InspectOptions()
    backend: BackendRequest = BackendRequest()
    truth: Path | None = None  # strips.json of `gedge data synth-strips`


@dataclass
class TruthSummary:
    """Line-scan strips against their planted defects."""

    strips: list[StripScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        planted = sum(s.planted for s in self.strips)
        found = sum(s.found for s in self.strips)
        return {"strips": len(self.strips), "planted": planted, "found": found,
                "recall": found / planted if planted else None,
                "false_alarms": sum(s.false_alarms for s in self.strips),
                "clean_strips_rejected": sum(1 for s in self.strips if not s.planted and s.rejected),
                "clean_strips": sum(1 for s in self.strips if not s.planted),
                "per_strip": [s.to_dict() for s in self.strips]}


@dataclass
class InspectionResult:
    summary: InspectSummary
    artifact: Artifact  # the model as gedge read it (a served model: as its server describes it)
    backend_note: str  # how the backend was chosen
    truth: TruthSummary | None
    failed: list[ImageReport]

    def to_dict(self) -> dict[str, Any]:
        values = self.summary.to_dict()
        if self.truth is not None:
            values["ground_truth"] = self.truth.to_dict()
        return values

    def failure(self) -> DataError | RuntimeFailure | None:
        """What the run's failed images amount to, raised by the CLI after the summary: a backend that failed on
        a batch (a runtime failure) outranks unreadable images (bad input); None when every image has a
        decision."""
        s = self.summary
        first = {kind: next((r for r in self.failed if (r.error_kind or "input") == kind), None)
                 for kind in ("runtime", "input")}
        if s.runtime_errors and first["runtime"] is not None:
            return RuntimeFailure(f"{s.runtime_errors} of {s.images} images failed on the backend "
                                  f"({s.input_errors} unreadable); first: {first['runtime'].error}", s.model)
        if s.input_errors and first["input"] is not None:
            return DataError(f"{s.input_errors} of {s.images} images could not be inspected; first: "
                             f"{first['input'].error}")
        return None


class InspectionSession:
    """Opens the backend on entry and closes it on exit; :meth:`reports` runs the images."""

    def __init__(self, request: InspectRequest) -> None:
        self.request = request
        self.files = expand_inputs(list(request.inputs))
        self.truth = read_truth(request.truth) if request.truth is not None else None
        self.model = open_model(request.model)  # a served model's facts come with its backend
        self.artifact: Artifact | None = self.model if isinstance(self.model, Artifact) else None
        self.backend_note = ""
        self.backend = None
        self.inspector: Inspector | None = None
        self.scored = TruthSummary() if self.truth is not None else None
        self.failed: list[ImageReport] = []

    def verified(self) -> Verification | None:
        """The model's verification with its verdicts enforced (None: a served model, checked by its server)."""
        return None if self.artifact is None else self.artifact.verified(self.request.backend.force)

    def __enter__(self) -> InspectionSession:
        request, wanted = self.request, self.request.backend
        kind = wanted.kind
        if kind is None:
            choice = auto_backend(self.model, measure_batch=request.options.batch_size, threads=wanted.threads)
            kind = choice.kind
            if choice.reason != "the file's own backend":
                self.backend_note = f"{choice.kind} {choice.precision} ({choice.reason}; --backend to choose)"
        with_amap = request.options.overlays is not None and (self.artifact is None or self.artifact.with_amap)
        self.backend = open_backend(self.model, kind, threads=wanted.threads, device=wanted.device,
                                    with_amap=with_amap, slots=request.options.slots, performance=wanted.performance,
                                    streams=wanted.streams, force=wanted.force)
        self.artifact = self.artifact or self.backend.info.artifact
        self.inspector = Inspector(self.backend, self.artifact, request.options)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.backend is not None:
            self.backend.close()

    def reports(self, progress: Callable[[int, int], None] | None = None) -> Iterator[ImageReport]:
        assert self.inspector is not None, "use the session as a context manager"
        for report in self.inspector.run(self.files, progress):
            if not report.ok:
                self.failed.append(report)
            elif self.scored is not None:
                self._score_truth(report)
            yield report

    def _score_truth(self, report: ImageReport) -> None:
        name = Path(report.path).name
        planted = self.truth.get(name) if self.truth else None
        if planted is not None:
            boxes = [(b.x0, b.y0, b.x1, b.y1) for b in report.boxes]
            self.scored.strips.append(score_strip(name, planted, boxes, report.anomalous))

    def result(self) -> InspectionResult:
        assert self.inspector is not None
        truth = self.scored if self.scored is not None and self.scored.strips else None
        return InspectionResult(self.inspector.summary, self.artifact, self.backend_note, truth, self.failed)
