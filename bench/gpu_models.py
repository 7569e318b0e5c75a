"""The models ``gedge gpu-check`` builds: a small checkpoint (or a given one), a tiny wood data set, and FP32, FP16
and INT8 (Q/DQ) TensorRT engines with their build-time parity (recorded in each manifest; gpu-check judges it).

Making a checkpoint and exporting graphs needs torch, so :mod:`gedge.bench.gpu_check` loads this module by name
(:func:`gedge.core.optional.require`) in the steps that need it, and the CUDA steps run on a device without torch.
"""

from __future__ import annotations

from pathlib import Path

from gedge.calibrate.quantize import quantize_graph
from gedge.calibrate.ranges import PatchReader, collect_ranges
from gedge.core.artifacts.graph import load_graph, read_facts
from gedge.core.decision import DecisionRule
from gedge.core.preprocess import Preprocess
from gedge.data.images import list_images
from gedge.data.sampling import grid_patches
from gedge.data.synth import SynthConfig, write_synthetic
from gedge.data.tiles import load_prepared
from gedge.export.build_plan import BuildRequest
from gedge.export.engine_build import build_engine
from gedge.export.fp16 import write_fp16_graph
from gedge.export.onnx_export import ExportOptions, export_checkpoint, serialize
from gedge.reference.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
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


def engine_graphs(model: Path, data: Path, folder: Path) -> dict[str, Path]:
    """The FP32 graph, its FP16 graph and a TensorRT-flavoured INT8 Q/DQ graph (entropy ranges on wood patches)."""
    checkpoint = load_checkpoint(model)
    fp32 = export_checkpoint(model, folder / "scorer.onnx", ExportOptions()).path
    graphs = {"fp32": fp32, "fp16": write_fp16_graph(fp32, folder / "scorer.fp16.onnx")}
    fp32_model = load_graph(fp32)
    images = load_prepared(list_images(data / "train" / "good")[:8], checkpoint.preprocess)
    patches = grid_patches(images, checkpoint.model.isize, 32, seed=0)
    facts = read_facts(fp32_model)
    ranges = collect_ranges(fp32_model, PatchReader(patches, facts.input_name, facts.input), "entropy")
    qdq = folder / "scorer.int8.qdq.onnx"
    qdq.write_bytes(serialize(quantize_graph(fp32_model, ranges, "tensorrt")))
    graphs["int8"] = qdq
    return graphs


def build_engines(model: Path, data: Path, folder: Path) -> tuple[dict[str, Path], dict[str, dict]]:
    """An engine per precision, with the build-time parity against the checkpoint its manifest records
    (``{"engine": ..., "graph": ...}`` per precision; gpu-check judges them) and the build seconds."""
    engines, parities = {}, {}
    for precision, graph in engine_graphs(model, data, folder).items():
        # The INT8 graph is made here without `gedge calibrate`'s accuracy gate: built with force (the manifest
        # records it); its engine's parity is measured below like the others.
        request = BuildRequest(precision, max_batch=32, progress=False, force=precision == "int8")
        result = build_engine(graph, request, ref=model, data=data)
        engines[precision] = result.engine
        parities[precision] = {**result.parity, "build_seconds": result.build_seconds}
    return engines, parities
