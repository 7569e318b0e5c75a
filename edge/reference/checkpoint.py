"""gedge's checkpoint: one self-describing file (config, G and D weights, decision rule, facts).

Loading needs only the model definition, never the training code. The file is a ``torch.save`` of plain
types and tensors, read back with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from gedge import __version__
from gedge.core.atomic import atomic_path
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, first_line
from gedge.core.preprocess import Preprocess
from gedge.reference.model import ModelConfig, NetD, NetG
from gedge.reference.scoring import FusedScorer

FORMAT = "gedge-checkpoint"


FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 named the decision rule "calibration"


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


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a gedge checkpoint (format versions 1 and 2) and check its weights against its model config."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("checkpoint file does not exist", path)
    kind = {".onnx": "an ONNX graph", ".xml": "an OpenVINO IR", ".engine": "a TensorRT engine",
            ".plan": "a TensorRT engine"}.get(path.suffix.lower())
    if kind:
        raise ArtifactError(f"this is {kind}, not a gedge checkpoint (.pt); `gedge parity`, `gedge inspect` and "
                            "`gedge bench` take deployed models", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise ArtifactError(f"not a readable checkpoint (truncated or corrupt?): {reason}", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError("not a gedge checkpoint (use `gedge import` for GANomaly or anomalib files)", path)
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ArtifactError(f"checkpoint format version {version}; this gedge ({__version__}) reads "
                            f"versions {', '.join(map(str, READABLE_VERSIONS))}", path)
    if version == 1:
        payload["decision"] = payload.get("calibration")
    try:
        checkpoint = Checkpoint(
            model=ModelConfig.from_dict(payload["model"]),
            preprocess=Preprocess.from_dict(payload["preprocess"]),
            decision=DecisionRule.from_dict(payload["decision"]),
            netg_state=payload["netg"],
            netd_state=payload["netd"],
            score_stats=payload.get("score_stats", {}),
            facts=payload.get("facts", {}),
            gedge_version=payload.get("gedge_version", "unknown"),
        )
    except KeyError as exc:
        raise ArtifactError(f"checkpoint is missing {exc}", path) from None
    try:
        checkpoint.networks()  # validate the weights against the config now, with the path in the message
    except ArtifactError as exc:
        raise ArtifactError(exc.problem, path) from None
    return checkpoint
