"""The models ``gedge gpu-check`` builds: a small checkpoint (or a given one), a tiny wood data set, and FP32, FP16
and INT8 (Q/DQ) TensorRT engines with their build-time parity (recorded in each manifest; gpu-check judges it).

Making a checkpoint and exporting graphs needs torch (as `gedge gpu-check` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gedge.calibrate.quantize import quantize_graph
from gedge.calibrate.ranges import PatchReader, collect_ranges
from gedge.core import artifacts
from gedge.core.artifacts.graph import write_graph
from gedge.core.artifacts.manifest import ParityRecord
from gedge.core.decision import DecisionRule
from gedge.core.preprocess import Preprocess
from gedge.data.images import list_images
from gedge.data.sampling import grid_patches
from gedge.data.synth import SynthConfig, write_synthetic
from gedge.data.tiles import load_prepared
from gedge.export.build_parity import BuildParityRequest
from gedge.export.build_plan import BuildRequest
from gedge.export.engine_build import EngineResult, build_engine
from gedge.export.fp16 import write_fp16_graph
from gedge.export.onnx_export import ExportOptions, export_checkpoint
from gedge.reference.checkpoint import Checkpoint, checkpoint_of, save_checkpoint
from gedge.reference.model import ModelConfig, build_networks


def small_model(folder: Path, given: Path | None) -> tuple[Path, Path]:
    """A checkpoint (given, or a random demo-sized one with the default decision rule) and a tiny wood data set."""
    data = folder / "wood"
    write_synthetic(data, SynthConfig(size=128, n_train=12, n_test_good=6, n_test_per_defect=2, seed=0))
    if given is not None:
        return given, data
    config = ModelConfig(isize=32, nz=100, ngf=32, ndf=32)
    netg, netd = build_networks(config, seed=0)
    checkpoint = Checkpoint(config, Preprocess(mode="patch", isize=32, scale=0.5), DecisionRule(),
                            netg.state_dict(), netd.state_dict(), facts={"data": str(data), "note": "gpu-check"})
    path = folder / "model.pt"
    save_checkpoint(checkpoint, path)
    return path, data


def engine_graphs(reference: artifacts.Artifact, data: Path, folder: Path) -> dict[str, artifacts.Artifact]:
    """The FP32 graph, its FP16 graph and a TensorRT-flavoured INT8 Q/DQ graph (entropy ranges on wood patches)."""
    checkpoint = checkpoint_of(reference)
    fp32 = export_checkpoint(reference, folder / "scorer.onnx", ExportOptions()).graph
    graphs = {"fp32": fp32, "fp16": write_fp16_graph(fp32, folder / "scorer.fp16.onnx")}
    images = load_prepared(list_images(data / "train" / "good")[:8], checkpoint.preprocess)
    patches = grid_patches(images, checkpoint.model.isize, 32, seed=0)
    facts = fp32.model_facts()
    ranges = collect_ranges(fp32.onnx_model, PatchReader(patches, facts.input_name, facts.input_kind), "entropy")
    graphs["int8"] = write_graph(folder / "scorer.int8.qdq.onnx", quantize_graph(fp32.onnx_model, ranges, "tensorrt"))
    return graphs


@dataclass(frozen=True)
class BuiltEngine:
    """An engine gpu-check built: the parity its manifest records and how long the build took."""

    parity: dict[str, ParityRecord]
    build_seconds: float = 0.0


def build_engines(model: Path, data: Path, folder: Path) -> tuple[dict[str, Path], dict[str, BuiltEngine]]:
    """An engine per precision, with the build-time parity against the checkpoint its manifest records (gpu-check
    judges it) and the build seconds."""
    engines, built = {}, {}
    reference = artifacts.open(model, ("checkpoint",))
    for precision, graph in engine_graphs(reference, data, folder).items():
        # The INT8 graph is made here without `gedge calibrate`'s accuracy gate: built with force (the manifest
        # records it); its engine's parity is measured below like the others.
        request = BuildRequest(precision, max_batch=32, progress=False, force=precision == "int8")
        result: EngineResult = build_engine(graph, request, parity=BuildParityRequest(reference, data))
        engines[precision] = result.engine
        built[precision] = BuiltEngine(result.parity, result.build_seconds)
    return engines, built
