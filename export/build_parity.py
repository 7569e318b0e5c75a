"""Parity measured at build time (``gedge build --ref CHECKPOINT --data DIR``), for the engine's manifest.

Where a GPU and a TensorRT runtime can run the fresh engine, the engine itself is compared with the torch
reference; otherwise engine parity is pending (to be measured with ``gedge parity`` on the device) and the
manifest records the ONNX Runtime parity of the graph the engine was built from. Both go through the comparison
``gedge parity`` makes (:mod:`gedge.compare.parity`); this module only chooses which and summarises the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gedge.compare.backends import open_candidate
from gedge.compare.comparator import ParityReport
from gedge.compare.parity import ParityRequest, open_parity, parity_check, run_parity
from gedge.core.backend import Backend
from gedge.core.errors import ArtifactError, ConfigError, GedgeError

NOT_ASKED = "not measured: give --ref CHECKPOINT --data DIR to measure parity at build time"


@dataclass(frozen=True)
class BuildParityRequest:
    """What to measure parity against: the reference checkpoint and the data (both, or neither)."""

    reference: Path | None = None
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
        if self.reference is not None and not Path(self.reference).is_file():
            raise ArtifactError("reference checkpoint does not exist", self.reference)
        if self.data is not None and not Path(self.data).exists():
            raise ArtifactError("parity data folder does not exist", self.data)


@dataclass(frozen=True)
class ModelFile:
    path: Path
    precision: str


def parity_summary(report: ParityReport) -> dict[str, Any]:
    """The facts of a parity report a manifest keeps."""
    spearman = [row.spearman for row in report.outputs if row.spearman is not None]
    deltas = [abs(row.auroc_delta) for row in report.outputs if row.auroc_delta is not None]
    return {
        "status": "passed" if report.passed else "failed",
        "reference": report.reference, "candidate": report.candidate, "precision": report.precision,
        "data": report.data, "images": report.n_images, "inputs": report.n_inputs,
        "agreement": report.decisions.agreement,
        "rel_l2": {row.name: row.rel_l2 for row in report.outputs},
        "min_spearman": min(spearman) if spearman else None,
        "max_auroc_delta": max(deltas) if deltas else None,
        "limits": report.limits.to_dict(), "failures": report.failures, "notes": list(report.notes),
    }


def _open_engine(engine: Path) -> tuple[Backend | None, str]:
    """The engine on its TensorRT runtime backend (which verifies it against its manifest), or None and why not."""
    try:
        return open_candidate(engine), ""
    except GedgeError as exc:  # no CUDA bindings, a runtime that cannot load this engine...
        return None, f"the engine cannot run here ({exc.problem})"


def _request(parity: BuildParityRequest, model: ModelFile) -> ParityRequest:
    return ParityRequest(parity.reference, model.path, parity.data, model.precision, batch_size=parity.batch_size,
                         threads=parity.threads, force=parity.force)


def build_time_parity(parity: BuildParityRequest, engine: ModelFile, graph: ModelFile,
                      no_gpu: str = "") -> dict[str, Any]:
    """``{"engine": ..., "graph": ...}`` for the manifest. ``no_gpu``: why the engine cannot run here ("" when a
    GPU is present, and then the engine is opened and measured if a TensorRT runtime loads it)."""
    if not parity.asked:
        return {"engine": {"status": "not measured", "reason": NOT_ASKED},
                "graph": {"status": "not measured", "reason": NOT_ASKED}}
    backend, why = (None, no_gpu) if no_gpu else _open_engine(engine.path)
    if backend is not None:
        setup = open_parity(_request(parity, engine), candidate=backend)
        try:
            report = run_parity(setup)
        finally:
            setup.close()
        return {"engine": parity_summary(report),
                "graph": {"status": "not measured", "reason": "the engine itself was measured"}}
    report = parity_check(_request(parity, graph))
    return {"engine": {"status": "pending", "reason": f"{why}; run `gedge parity` with the engine on the device"},
            "graph": {"graph": graph.path.name, **parity_summary(report)}}
