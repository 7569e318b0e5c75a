"""Parity measured at build time (``gedge build --ref CHECKPOINT --data DIR``), for the engine's manifest.

Where a GPU and a TensorRT runtime can run the fresh engine, the engine itself is compared with the torch
reference; otherwise engine parity is pending (to be measured with ``gedge parity`` on the device) and the
manifest records the ONNX Runtime parity of the graph the engine was built from. Both go through the comparison
``gedge parity`` makes (:mod:`gedge.compare.parity`), on the artifacts the build holds (the fresh engine's, in
memory; the graph's, as read or written once); this module only chooses which and summarises the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gedge.compare.backends import open_candidate
from gedge.compare.comparator import ParityReport
from gedge.compare.parity import ParityRequest, open_parity, parity_check, run_parity
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.manifest import ParityRecord
from gedge.core.backend import Backend
from gedge.core.errors import ArtifactError, ConfigError, GedgeError

NOT_ASKED = "not measured: give --ref CHECKPOINT --data DIR to measure parity at build time"


@dataclass(frozen=True)
class BuildParityRequest:
    """What to measure parity against: the reference checkpoint and the data (both, or neither)."""

    reference: Artifact | None = None  # the checkpoint, as gedge read it
    data: Path | None = None
    batch_size: int = 64
    threads: int = 0
    force: bool = False  # the graph's parity may run on a graph whose recorded gate failed (a forced build)

    @property
    def asked(self) -> bool:
        return self.reference is not None

    def check(self) -> None:
        """Both or neither, and both exist (before a long build)."""
        if (self.reference is None) != (self.data is None):
            raise ConfigError("parity at build time needs both --ref CHECKPOINT and --data DIR")
        if self.reference is not None and self.reference.kind != "checkpoint":
            raise ConfigError(f"{self.reference.name}: the reference is a gedge checkpoint (.pt)")
        if self.data is not None and not Path(self.data).exists():
            raise ArtifactError("parity data folder does not exist", self.data)


def parity_summary(report: ParityReport, **extra: Any) -> ParityRecord:
    """The facts of a parity report a manifest keeps."""
    spearman = [row.spearman for row in report.outputs if row.spearman is not None]
    deltas = [abs(row.auroc_delta) for row in report.outputs if row.auroc_delta is not None]
    return ParityRecord("passed" if report.passed else "failed", failures=tuple(report.failures), details={
        **extra, "reference": report.reference, "candidate": report.candidate, "precision": report.precision,
        "data": report.data, "images": report.n_images, "inputs": report.n_inputs,
        "agreement": report.decisions.agreement,
        "rel_l2": {row.name: row.rel_l2 for row in report.outputs},
        "min_spearman": min(spearman) if spearman else None,
        "max_auroc_delta": max(deltas) if deltas else None,
        "limits": report.limits.to_dict(), "notes": list(report.notes)})


def _open_engine(engine: Artifact) -> tuple[Backend | None, str]:
    """The engine on its TensorRT runtime backend (which checks its TensorRT and GPU against its manifest), or None
    and why not."""
    try:
        return open_candidate(engine), ""
    except GedgeError as exc:  # no CUDA bindings, a runtime that cannot load this engine...
        return None, f"the engine cannot run here ({exc.problem})"


def _request(parity: BuildParityRequest, model: Artifact) -> ParityRequest:
    return ParityRequest(parity.reference, model, parity.data, model.precision, batch_size=parity.batch_size,
                         threads=parity.threads, force=parity.force)


def build_time_parity(parity: BuildParityRequest, engine: Artifact, graph: Artifact,
                      no_gpu: str = "") -> dict[str, ParityRecord]:
    """``{"engine": ..., "graph": ...}`` for the manifest. ``no_gpu``: why the engine cannot run here ("" when a
    GPU is present, and then the engine is opened and measured if a TensorRT runtime loads it)."""
    if not parity.asked:
        return {"engine": ParityRecord("not measured", NOT_ASKED), "graph": ParityRecord("not measured", NOT_ASKED)}
    backend, why = (None, no_gpu) if no_gpu else _open_engine(engine)
    if backend is not None:
        setup = open_parity(_request(parity, engine), candidate=backend)
        try:
            report = run_parity(setup)
        finally:
            setup.close()
        return {"engine": parity_summary(report),
                "graph": ParityRecord("not measured", "the engine itself was measured")}
    report = parity_check(_request(parity, graph))
    return {"engine": ParityRecord("pending", f"{why}; run `gedge parity` with the engine on the device"),
            "graph": parity_summary(report, graph=graph.name)}
