"""The models ``gedge bench-cpu`` times: a checkpoint (given, or random at the default widths) and its graphs.

FP32, TensorRT-flavoured and CPU-flavoured INT8 ONNX graphs, and with OpenVINO the NNCF INT8 IR, all calibrated
(min/max) on random patches, which is enough for timing but says nothing about accuracy (that is
`gedge calibrate`'s gate). Building them needs torch (the export), as `gedge bench-cpu` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from gedge.calibrate.nncf_int8 import write_openvino_int8
from gedge.calibrate.quantize import quantize_graph
from gedge.calibrate.ranges import PatchReader, collect_ranges
from gedge.core import artifacts
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.graph import write_graph
from gedge.core.artifacts.records import CalibrationSetRef
from gedge.core.decision import DecisionRule
from gedge.core.preprocess import Preprocess
from gedge.export.onnx_export import ExportOptions, export_model, facts_from_checkpoint
from gedge.reference.checkpoint import Checkpoint, checkpoint_of, save_checkpoint
from gedge.reference.model import ModelConfig, build_networks

ORT_FP32 = "onnxruntime fp32"
ORT_INT8_TENSORRT = "onnxruntime int8 (tensorrt q/dq)"
ORT_INT8_CPU = "onnxruntime int8 (cpu)"
OPENVINO_INT8 = "openvino int8 (nncf)"


@dataclass
class CpuModels:
    """The checkpoint file and the graphs built from it (row label -> file), with what the rows should say."""

    checkpoint: Artifact
    model: dict  # the ModelConfig
    graphs: dict[str, Artifact] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def random_checkpoint(isize: int = 64, seed: int = 0) -> Checkpoint:
    """A randomly initialised checkpoint of ``ModelConfig(isize)`` (default widths) with non-trivial BatchNorm
    statistics, for timing only."""
    config = ModelConfig(isize=isize)
    netg, netd = build_networks(config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    for module in [*netg.modules(), *netd.modules()]:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) * 0.2 - 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return Checkpoint(config, Preprocess(mode="patch", isize=isize), DecisionRule(), netg.state_dict(),
                      netd.state_dict(), facts={"note": "random initialisation, for timing"})


def bench_graphs(checkpoint: Checkpoint, folder: Path, patches: np.ndarray | None = None, seed: int = 0,
                 openvino: bool = False) -> dict[str, Artifact]:
    """FP32, TensorRT-flavoured and CPU-flavoured INT8 graphs of a checkpoint (min/max on ``patches``), and with
    ``openvino`` the NNCF INT8 IR (``openvino int8 (nncf)``, calibrated on the same patches)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = ExportOptions()
    fp32 = export_model(checkpoint, options, facts_from_checkpoint(checkpoint, "bench", "", options))
    cfg = checkpoint.model
    if patches is None:
        patches = np.random.default_rng(seed).integers(0, 256, (64, cfg.isize, cfg.isize, cfg.nc), dtype=np.uint8)
    ranges = collect_ranges(fp32, PatchReader(patches, options.input_name), "minmax")
    graphs = {ORT_FP32: (fp32, folder / "scorer.onnx"),
              ORT_INT8_TENSORRT: (quantize_graph(fp32, ranges, "tensorrt"), folder / "scorer.int8.qdq.onnx"),
              ORT_INT8_CPU: (quantize_graph(fp32, ranges, "cpu"), folder / "scorer.int8.cpu.onnx")}
    written = {name: write_graph(path, model) for name, (model, path) in graphs.items()}
    if openvino:
        ir, _ = write_openvino_int8(written[ORT_FP32], patches, folder / "scorer.int8.ov.xml",
                                    CalibrationSetRef("random patches, for timing", len(patches)))
        written[OPENVINO_INT8] = ir
    return written


def build_models(checkpoint_path: Path | None, isize: int, folder: Path, openvino: bool) -> CpuModels:
    """The checkpoint (``checkpoint_path``, or a random ``ModelConfig(isize)`` saved in ``folder``) and its graphs."""
    if checkpoint_path is not None:
        notes = [f"model from {checkpoint_path}"]
    else:
        checkpoint_path = save_checkpoint(random_checkpoint(isize), folder / "bench.pt")
        notes = [f"ModelConfig(isize={isize}) with default widths, random initialisation (speed does not depend on "
                 "the weights); INT8 ranges by min/max on random patches"]
    reference = artifacts.open(checkpoint_path, ("checkpoint",))
    checkpoint = checkpoint_of(reference)
    graphs = bench_graphs(checkpoint, folder, openvino=openvino)
    return CpuModels(reference, checkpoint.model.to_dict(), graphs, notes)
