"""The torch backend: the reference scorer (:class:`gedge.reference.scoring.ReferenceScorer`) on CPU or CUDA.

The registry loads this module by name (it needs torch) to open a checkpoint (:func:`open_artifact`), from the
:class:`~gedge.core.artifacts.Artifact` gedge read: the checkpoint's contents were read once, with the file.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from gedge.core.artifacts import Artifact
from gedge.core.errors import ConfigError
from gedge.reference.checkpoint import Checkpoint, checkpoint_of
from gedge.reference.scoring import ReferenceScorer
from gedge.runtime.options import OpenOptions


class TorchBackend(ReferenceScorer):
    """PyTorch eager execution of the fused scorer; what every other backend is compared against."""

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", with_amap: bool = False,
                 artifact: Artifact | None = None) -> None:
        super().__init__(checkpoint, device=device, with_amap=with_amap)
        self.info = replace(self.info, artifact=artifact)


def open_artifact(artifact: Artifact, options: OpenOptions) -> TorchBackend:
    """The registry's opener: torch on the CPU or CUDA, with ``options.threads`` intra-op threads."""
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("torch CUDA was asked for but torch sees no CUDA GPU "
                          f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    if options.threads:
        torch.set_num_threads(options.threads)
    return TorchBackend(checkpoint_of(artifact), device=options.device, with_amap=options.with_amap,
                        artifact=artifact)
