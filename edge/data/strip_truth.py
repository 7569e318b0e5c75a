"""The ground truth of line-scan strips (``strips.json``, written with the synthetic strips by
:mod:`gedge.data.strips`) and an inspection scored against it: planted defects found, false alarms per strip.

Kept apart from the generator, so that ``gedge inspect --truth`` needs none of the synthetic materials.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gedge.core.errors import ArtifactError

TRUTH_NAME = "strips.json"


def read_truth(path: str | Path) -> dict[str, list[list[int]]]:
    """File name -> planted boxes, from a ``strips.json`` (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH_NAME
    try:
        payload = json.loads(path.read_text())
        return {s["file"]: [d["box"] for d in s["defects"]] for s in payload["strips"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"not a strips ground-truth file ({exc.__class__.__name__}: {exc})", path) from None


@dataclass
class StripScore:
    """Planted defects found (a reported box overlaps them) and reported boxes that overlap no defect."""

    file: str
    planted: int
    found: int
    false_alarms: int
    rejected: bool

    @property
    def recall(self) -> float | None:
        return self.found / self.planted if self.planted else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recall": self.recall}


def _overlaps(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def score_strip(file: str, planted: list[list[int]], boxes: list[tuple[int, int, int, int]],
                rejected: bool) -> StripScore:
    """Count the planted defects some reported box overlaps, and the reported boxes that overlap none."""
    found = sum(any(_overlaps(p, b) for b in boxes) for p in planted)
    false = sum(not any(_overlaps(b, p) for p in planted) for b in boxes)
    return StripScore(file, len(planted), found, false, rejected)
