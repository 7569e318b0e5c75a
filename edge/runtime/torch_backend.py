"""The torch backend: the reference scorer (:class:`gedge.reference.scoring.ReferenceScorer`) on CPU or CUDA."""

from __future__ import annotations

from gedge.reference.scoring import ReferenceScorer


class TorchBackend(ReferenceScorer):
    """PyTorch eager execution of the fused scorer; what every other backend is compared against."""
