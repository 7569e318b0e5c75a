"""Synthetic line-scan strips with planted defects and their ground truth, and recall / false alarms per strip.

A strip is one synthetic board (:func:`gedge.data.wood_board.render_board`, ``height`` square) repeated along the
strip, every other copy mirrored, so the grain and the lighting run on across each seam without a step (a
seam would be a defect of its own). Defects (:func:`gedge.data.wood_defects.add_defect`) are painted into distinct
``height``-wide sections; their boxes come from the defect masks. Strips without defects are part of every
set, for counting false alarms.

``strips.json`` holds the ground truth: per strip the file name, the size and each defect's class and box
(x0, y0, x1, y1; x1 and y1 exclusive, image pixels).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.atomic import write_bytes, write_json
from gedge.core.errors import ArtifactError, ConfigError
from gedge.data.wood_board import render_board
from gedge.data.wood_defects import DEFECT_CLASSES, add_defect
from PIL import Image

TRUTH_NAME = "strips.json"


# Every fourth strip of a set is left clean, so that a set always has strips to count false alarms on.
CLEAN_EVERY = 4


def render_strip(rng: np.random.Generator, height: int = 256, length: int = 2048, defects: int = 0,
                 classes: tuple[str, ...] = DEFECT_CLASSES) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A (height, length, 3) strip and its planted defects ``[{"class", "box"}]``."""
    if length < height:
        raise ConfigError(f"a strip is at least as long as it is high ({height}), got length {length}")
    sections = -(-length // height)
    if defects > sections:
        raise ConfigError(f"{defects} defects do not fit in {sections} sections of {height} px")
    board = render_board(rng, height)
    strip = np.concatenate([board if k % 2 == 0 else board[:, ::-1] for k in range(sections)], axis=1)[:, :length]
    strip = np.ascontiguousarray(strip)
    planted = []
    full = [k for k in range(sections) if (k + 1) * height <= length]
    for k in sorted(rng.choice(full, size=defects, replace=False).tolist()) if defects else []:
        x0 = k * height
        cls = str(rng.choice(classes))
        section, mask = add_defect(strip[:, x0:x0 + height], cls, rng)
        strip[:, x0:x0 + height] = section
        ys, xs = np.nonzero(mask)
        if len(ys):
            planted.append({"class": cls, "box": [int(xs.min()) + x0, int(ys.min()), int(xs.max()) + x0 + 1,
                                                  int(ys.max()) + 1]})
    return strip, planted


def write_strips(out: str | Path, count: int = 8, height: int = 256, length: int = 2048, seed: int = 0,
                 max_defects: int = 3) -> dict[str, Any]:
    """``count`` strips as PNGs in ``out`` with ``strips.json``; every ``CLEAN_EVERY``-th strip has no defects,
    the others 1 to ``max_defects``."""
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    if height < 1 or max_defects < 1:
        raise ConfigError(f"height and max defects must be at least 1, got {height} and {max_defects}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    strips = []
    for i in range(count):
        n = 0 if i % CLEAN_EVERY == CLEAN_EVERY - 1 else int(rng.integers(1, max_defects + 1))
        image, planted = render_strip(rng, height, length, n)
        name = f"strip_{i:03d}.png"
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        write_bytes(out / name, buffer.getvalue())
        strips.append({"file": name, "width": length, "height": height, "defects": planted})
    truth = {"generator": "gedge.strips v1", "seed": seed, "strips": strips}
    write_json(out / TRUTH_NAME, truth)
    return truth


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
