"""PyTorch to one fused ONNX graph: camera bytes in, the residual scores (and optionally amap) out.

The graph is :class:`gedge.reference.scoring.DeployedScorer` of the checkpoint in eval mode, with every BatchNorm folded
into the convolution before it, exported by torch's ``torch.export``-based (dynamo) exporter. That exporter
gives a graph whose shapes are all inferred statically except the batch dimension (``batch``), and its
optimiser constant-folds the score normalisation. The legacy TorchScript exporter is deprecated and leaves
``Shape``/``Gather`` chains and BatchNorm after ConvTranspose behind.

After export, nodes and intermediate tensors get stable names from the module they came from
(``netg.encoder1.main.3/Conv``, ``netd.features.0/Conv``, ``scores/ReduceMean_2``; tensors ``<node>:<i>``),
the graph is shape-inferred in strict mode and checked with ``onnx.checker`` (``full_check``), and the
checkpoint's facts go into ``metadata_props`` (see :mod:`gedge.core.artifacts.graph`).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from gedge import __version__
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.facts import Lineage, ModelFacts
from gedge.core.artifacts.graph import write_facts, write_graph
from gedge.core.errors import ConfigError
from gedge.core.scores import OUTPUT_NAMES
from gedge.core.timing import Stopwatch
from gedge.export.fp16 import convert_to_fp16
from gedge.reference.checkpoint import Checkpoint, checkpoint_of
from gedge.reference.scoring import DeployedScorer, FusedScorer
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def facts_from_checkpoint(checkpoint: Checkpoint, source_name: str, source_sha256: str,
                          options: ExportOptions) -> ModelFacts:
    """The facts an exported graph carries: its input and outputs, and the checkpoint's model and scoring facts; its
    lineage names the checkpoint (file name and sha256)."""
    return ModelFacts(
        precision="fp32", input_kind=options.input, input_name=options.input_name,
        outputs=tuple(options.output_names), model=checkpoint.model.to_dict(), preprocess=checkpoint.preprocess,
        decision=checkpoint.decision, score_stats=dict(checkpoint.score_stats),
        lineage=Lineage(source_name, source_sha256),
        training={"checkpoint_gedge_version": checkpoint.gedge_version, **checkpoint.facts}, gedge_version=__version__)


INPUT_KINDS: dict[str, tuple[str, str, str]] = {
    "uint8-nhwc": ("pixels", "uint8", "NHWC"),
    "float-nchw": ("images", "float32", "NCHW"),
}


DEFAULT_OPSET = 18


OUTPUT_DOCS = {
    "d1": "mean |f(x) - f(G(x))| over discriminator features (seed paper D1)",
    "d2": "RMS of f(x) - f(G(x)) over discriminator features (seed paper D2)",
    "d3": "mean |x - G(x)| over the image (seed paper D3)",
    "latent": "mean (z - z')^2 of the two encoder latents (GANomaly's score)",
    "d1_local": "D1 per position of D's first pyramid level, maximum over positions (defect scale)",
    "d3_local": "D3 averaged over a k x k window, maximum over windows (defect scale)",
    "score": "primary score normalised with validation-normal statistics: (s - mean) / std",
    "amap": "|x - G(x)| averaged over channels, (N, H, W)",
}


@dataclass(frozen=True)
class ExportOptions:
    """What the exported graph takes and returns."""

    input: str = "uint8-nhwc"  # or "float-nchw": float32 NCHW already normalised to [-1, 1]
    with_amap: bool = False
    opset: int = DEFAULT_OPSET

    def __post_init__(self) -> None:
        if self.input not in INPUT_KINDS:
            raise ConfigError(f"input must be one of {', '.join(INPUT_KINDS)}, got {self.input!r}")
        if not 17 <= self.opset <= 21:
            raise ConfigError(f"opset must be 17 to 21, got {self.opset}")

    @property
    def input_name(self) -> str:
        return INPUT_KINDS[self.input][0]

    @property
    def output_names(self) -> list[str]:
        return [*OUTPUT_NAMES, "amap"] if self.with_amap else list(OUTPUT_NAMES)


@dataclass
class ExportResult:
    graph: Artifact  # the graph written (its sha256 from the bytes written)
    nodes: int
    seconds: float

    @property
    def path(self) -> Path:
        return Path(self.graph.path)

    @property
    def sidecar(self) -> Path | None:
        return self.graph.facts_file

    @property
    def facts(self) -> ModelFacts:
        return self.graph.model_facts()


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (eval mode) with each Conv/ConvTranspose + BatchNorm pair of a Sequential fused."""
    folded = copy.deepcopy(module).eval()
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = seq._modules[first], seq._modules[second]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[first] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                seq._modules[second] = nn.Identity()
    return folded


def _module_of(node: onnx.NodeProto) -> str:
    """The scorer-level module a node came from, from the exporter's name-scope metadata."""
    scopes: list[str] = []
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            with contextlib.suppress(ValueError, SyntaxError):
                scopes = list(ast.literal_eval(prop.value))
    path = scopes[-2] if len(scopes) >= 2 else ""
    if path.startswith("camera"):
        return "camera"
    path = path.removeprefix("scorer").lstrip(".")
    if path.startswith("features"):
        return f"netd.{path}"
    return path if path.startswith("netg") else "scores"


def name_graph(model: onnx.ModelProto) -> None:
    """Give nodes and intermediate tensors stable, meaningful names; drop the exporter's node metadata."""
    graph = model.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output} | {t.name for t in graph.initializer}
    used: dict[str, int] = {}
    renames: dict[str, str] = {}
    for node in graph.node:
        base = f"{_module_of(node)}/{node.op_type}"
        count = used.get(base, 0)
        used[base] = count + 1
        node.name = base if count == 0 else f"{base}_{count}"
        for i, out in enumerate(node.output):
            if out and out not in keep:
                renames[out] = f"{node.name}:{i}"
        del node.metadata_props[:]
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for info in graph.value_info:
        info.name = renames.get(info.name, info.name)


@contextlib.contextmanager
def _quiet_exporter():
    """torch's exporter logs and warns about things that do not concern this graph (torchvision ops...)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def deployed_module(checkpoint: Checkpoint, options: ExportOptions) -> nn.Module:
    """The module that is exported: BatchNorm folded, eval mode, uint8 or float front end."""
    scorer: FusedScorer = checkpoint.scorer(with_amap=options.with_amap)
    return DeployedScorer(fold_batchnorm(scorer), uint8_input=options.input == "uint8-nhwc").eval()


def export_model(checkpoint: Checkpoint, options: ExportOptions = ExportOptions(),
                 facts: ModelFacts | None = None) -> onnx.ModelProto:
    """The fused FP32 graph of a checkpoint as a checked, shape-inferred ModelProto with its facts."""
    cfg = checkpoint.model
    module = deployed_module(checkpoint, options)
    if options.input == "uint8-nhwc":
        example = torch.zeros((2, cfg.isize, cfg.isize, cfg.nc), dtype=torch.uint8)
    else:
        example = torch.zeros((2, cfg.nc, cfg.isize, cfg.isize), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(module, (example,), None, input_names=[options.input_name],
                                    output_names=options.output_names,
                                    dynamic_shapes={"pixels": {0: batch}}, opset_version=options.opset,
                                    dynamo=True, optimize=True, verbose=False, report=False)
    model = program.model_proto
    name_graph(model)
    model.graph.name = "gedge_scorer"
    model.producer_name = "gedge"
    model.producer_version = facts.gedge_version if facts else ""
    model.doc_string = ("GANomaly fused scorer: generator, discriminator on [x; G(x)] in one pass, residual scores "
                        "d1, d2, d3, latent and the normalised score")
    for output in model.graph.output:
        output.doc_string = OUTPUT_DOCS.get(output.name, "")
    for graph_input in model.graph.input:
        graph_input.doc_string = ("camera bytes, uint8 NHWC" if options.input == "uint8-nhwc"
                                  else "float32 NCHW, normalised to [-1, 1] (x / 127.5 - 1)")
    if any(n.op_type == "BatchNormalization" for n in model.graph.node):
        raise RuntimeError("BatchNorm was not folded into the convolutions")
    # The exporter's value_info carries symbolic shapes (``batch``, ``2*batch``) that ONNX inference alone
    # cannot derive through the batch-dependent Slice; inference checks and completes them.
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(model, full_check=True)
    if facts is not None:
        write_facts(model, facts)
    return model


def export_checkpoint(checkpoint: Artifact, out: str | Path, options: ExportOptions = ExportOptions(),
                      precision: str = "fp32") -> ExportResult:
    """Export a checkpoint (as gedge read it) to ``out`` (FP32, or FP16 via :mod:`gedge.export.fp16`) with its
    sidecar."""
    watch = Stopwatch()
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"precision must be fp32 or fp16, got {precision!r} (INT8 comes from `gedge calibrate`)")
    reference = checkpoint_of(checkpoint)
    facts = facts_from_checkpoint(reference, checkpoint.name, checkpoint.sha256, options)
    model = export_model(reference, options, facts)
    if precision == "fp16":
        model = convert_to_fp16(model)
    graph = write_graph(out, model)
    return ExportResult(graph, len(model.graph.node), watch.seconds())
