"""gedge's checkpoint: one self-describing file (config, G and D weights, decision rule, facts).

Loading needs only the model definition, never the training code. The file is a ``torch.save`` of plain
types and tensors, read back with ``weights_only=True`` by the checkpoint kind's reader of
:func:`gedge.core.artifacts.open` (:mod:`gedge.core.artifacts.checkpoint`, which owns the format); this module
builds the networks from what it read (:func:`checkpoint_of`) and writes checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from gedge import __version__
from gedge.core.artifacts import Artifact
from gedge.core.artifacts.checkpoint import FORMAT, FORMAT_VERSION, read_checkpoint
from gedge.core.atomic import atomic_path
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, first_line
from gedge.core.preprocess import Preprocess
from gedge.reference.model import ModelConfig, NetD, NetG
from gedge.reference.scoring import FusedScorer


@dataclass
class Checkpoint:
    """A trained (or imported) detector."""

    model: ModelConfig
    preprocess: Preprocess
    decision: DecisionRule
    netg_state: dict[str, torch.Tensor]
    netd_state: dict[str, torch.Tensor]
    score_stats: dict[str, dict[str, float]] = field(default_factory=dict)  # per score: mean, std of normals
    facts: dict = field(default_factory=dict)  # training facts: preset, steps, seed, data, validation
    gedge_version: str = __version__

    def networks(self) -> tuple[NetG, NetD]:
        """G and D with the stored weights, in eval mode (the reference every engine is compared to)."""
        netg, netd = NetG(self.model), NetD(self.model)
        try:
            netg.load_state_dict(self.netg_state)
            netd.load_state_dict(self.netd_state)
        except RuntimeError as exc:
            raise ArtifactError(f"weights do not match the stored model config: {first_line(exc)}") from None
        return netg.eval(), netd.eval()

    def scorer(self, with_amap: bool = False) -> FusedScorer:
        netg, netd = self.networks()
        return FusedScorer(netg, netd, self.decision, with_amap=with_amap).eval()

    def to_payload(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "gedge_version": self.gedge_version,
            "model": self.model.to_dict(),
            "preprocess": self.preprocess.to_dict(),
            "decision": self.decision.to_dict(),
            "score_stats": self.score_stats,
            "facts": self.facts,
            "netg": {k: v.detach().cpu() for k, v in self.netg_state.items()},
            "netd": {k: v.detach().cpu() for k, v in self.netd_state.items()},
        }


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write the checkpoint atomically (a half-written file never carries the name)."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint.to_payload(), tmp)
    return Path(path)


def checkpoint_of(artifact: Artifact) -> Checkpoint:
    """The checkpoint of an artifact read by :func:`gedge.core.artifacts.open` (its contents were read with the file),
    its weights checked against its model config."""
    payload = artifact.payload
    if artifact.kind != "checkpoint" or payload is None:
        raise ArtifactError(f"this is {_KINDS.get(artifact.kind, 'not a checkpoint')}, not a gedge checkpoint (.pt); "
                            "`gedge parity`, `gedge inspect` and `gedge bench` take deployed models", artifact.path)
    facts = artifact.model_facts()
    try:
        checkpoint = Checkpoint(model=ModelConfig.from_dict(facts.model), preprocess=facts.preprocess,
                                decision=facts.decision, netg_state=payload["netg"], netd_state=payload["netd"],
                                score_stats=facts.score_stats, facts=facts.training, gedge_version=facts.gedge_version)
    except KeyError as exc:
        raise ArtifactError(f"checkpoint is missing {exc}", artifact.path) from None
    try:
        checkpoint.networks()  # validate the weights against the config now, with the path in the message
    except ArtifactError as exc:
        raise ArtifactError(exc.problem, artifact.path) from None
    return checkpoint


_KINDS = {"graph": "an ONNX graph", "ir": "an OpenVINO IR", "engine": "a TensorRT engine"}


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a gedge checkpoint (format versions 1 and 2) and check its weights against its model config."""
    path = Path(path)
    kind = {".onnx": "graph", ".xml": "ir", ".engine": "engine", ".plan": "engine"}.get(path.suffix.lower())
    if kind and path.is_file():
        raise ArtifactError(f"this is {_KINDS[kind]}, not a gedge checkpoint (.pt); `gedge parity`, `gedge inspect` "
                            "and `gedge bench` take deployed models", path)
    return checkpoint_of(read_checkpoint(path))
