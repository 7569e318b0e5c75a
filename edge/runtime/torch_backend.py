"""The torch backend: the reference scorer (:class:`gedge.reference.scoring.ReferenceScorer`) on CPU or CUDA.

The registry loads this module by name (it needs torch), to read a checkpoint's facts (:func:`checkpoint_info`)
and to open one (:func:`open_artifact`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from gedge.core.backend import ArtifactSummary
from gedge.core.errors import ConfigError
from gedge.reference.checkpoint import Checkpoint, load_checkpoint
from gedge.reference.scoring import ReferenceScorer
from gedge.runtime.artifacts import ModelInfo, OpenOptions


def checkpoint_summary(checkpoint: Checkpoint, path: str | Path | None = None) -> ArtifactSummary:
    return ArtifactSummary(str(path or ""), "checkpoint", "fp32", checkpoint.model.to_dict())


class TorchBackend(ReferenceScorer):
    """PyTorch eager execution of the fused scorer; what every other backend is compared against."""

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", with_amap: bool = False,
                 path: str | Path | None = None) -> None:
        super().__init__(checkpoint, device=device, with_amap=with_amap)
        self.info = replace(self.info, artifact=checkpoint_summary(checkpoint, path))


def checkpoint_info(path: Path) -> ModelInfo:
    """A checkpoint's scoring facts (the registry's reader for ``.pt``); the checkpoint itself is kept in
    ``details["checkpoint"]`` so that opening it does not read it twice."""
    checkpoint = load_checkpoint(path)
    decision = checkpoint.decision
    return ModelInfo(path, "torch", "fp32", checkpoint.preprocess, float(decision.threshold), decision.primary, True,
                     {"checkpoint": checkpoint}, checkpoint_summary(checkpoint, path))


def open_artifact(path: Path, options: OpenOptions, info: ModelInfo) -> TorchBackend:
    """The registry's opener: torch on the CPU or CUDA, with ``options.threads`` intra-op threads."""
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("torch CUDA was asked for but torch sees no CUDA GPU "
                          f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    if options.threads:
        torch.set_num_threads(options.threads)
    checkpoint = info.details.get("checkpoint") or load_checkpoint(path)
    return TorchBackend(checkpoint, device=options.device, with_amap=options.with_amap, path=path)
