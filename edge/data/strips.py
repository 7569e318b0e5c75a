"""Synthetic line-scan strips with planted defects, written with their ground truth (:mod:`gedge.data.strip_truth`
reads it back and scores inspections against it).

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
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.atomic import write_bytes, write_json
from gedge.core.errors import ConfigError
from gedge.data.strip_truth import TRUTH_NAME
from gedge.data.wood_board import render_board
from gedge.data.wood_defects import DEFECT_CLASSES, add_defect
from PIL import Image

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
