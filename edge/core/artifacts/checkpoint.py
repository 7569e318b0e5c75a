"""A gedge checkpoint (``model.pt``): the checkpoint kind's reader of :func:`gedge.core.artifacts.open`.

A checkpoint is one ``torch.save`` of plain types and tensors (the model config, the preprocessing, the decision
rule, the score statistics, the training facts, G's and D's weights), read back with ``weights_only=True``. Reading
one needs torch, which a device does not have, so torch is imported here only when a checkpoint is read, through
:func:`gedge.core.optional.require` (a missing torch is a one-line error with the install command): ``gedge.core``
itself imports without torch. The file is read once; its sha256 comes from the bytes read, its facts become
:class:`~gedge.core.artifacts.facts.ModelFacts`, and its contents stay in the Artifact (``payload``) for
:func:`gedge.reference.checkpoint.checkpoint_of`, which builds the networks from them without reading the file
again.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.facts import ModelFacts
from gedge.core.artifacts.records import read_file, sha256_bytes
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, GedgeError, first_line
from gedge.core.optional import require
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES

FORMAT = "gedge-checkpoint"


FORMAT_VERSION = 2


READABLE_VERSIONS = (1, 2)  # version 1 named the decision rule "calibration"


INPUT_NAME = "pixels"  # what the exported graph names its input


def load_payload(data: bytes, path: Path) -> dict[str, Any]:
    """A checkpoint's contents from its bytes (torch, ``weights_only``), its format and version checked."""
    torch = require("torch", f"reading the checkpoint {path.name}")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise ArtifactError(f"not a readable checkpoint (truncated or corrupt?): {first_line(exc)}", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError("not a gedge checkpoint (use `gedge import` for GANomaly or anomalib files)", path)
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ArtifactError(f"checkpoint format version {version}; this gedge reads versions "
                            f"{', '.join(map(str, READABLE_VERSIONS))}", path)
    if version == 1:
        payload["decision"] = payload.get("calibration")
    return payload


def checkpoint_facts(payload: dict[str, Any], path: Path) -> ModelFacts:
    """What a checkpoint scores: the fused scorer's outputs (and the anomaly map, which a checkpoint always gives)."""
    try:
        facts = ModelFacts(
            precision="fp32", input_kind="uint8-nhwc", input_name=INPUT_NAME, outputs=(*OUTPUT_NAMES, "amap"),
            model=dict(payload["model"]), preprocess=Preprocess.from_dict(payload["preprocess"]),
            decision=DecisionRule.from_dict(payload["decision"]), score_stats=dict(payload.get("score_stats") or {}),
            training=dict(payload.get("facts") or {}), gedge_version=str(payload.get("gedge_version", "unknown")))
    except KeyError as exc:
        raise ArtifactError(f"checkpoint is missing {exc}", path) from None
    except (GedgeError, TypeError, ValueError) as exc:
        raise ArtifactError(f"checkpoint facts do not parse: {getattr(exc, 'problem', exc)}", path) from None
    facts.check(path)
    return facts


def read_checkpoint(path: str | Path) -> Artifact:
    """A gedge checkpoint (format versions 1 and 2), read once."""
    path = Path(path)
    data = read_file(path, "checkpoint file")
    payload = load_payload(data, path)
    return Artifact(path, "checkpoint", sha256_bytes(data), checkpoint_facts(payload, path), payload=payload)
