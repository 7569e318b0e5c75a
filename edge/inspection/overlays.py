"""Overlay pictures: the heat map (the anomaly map, or tile scores) blended into the image, with the defect boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gedge.core.atomic import atomic_path
from gedge.core.preprocess import Preprocess
from gedge.core.scores import Scores
from gedge.data.tiles import Tiling
from gedge.inspection.boxes import Box
from PIL import Image, ImageDraw


def heat_map(tiling: Tiling, scores: Scores, threshold: float, pre: Preprocess,
             score_stats: dict[str, dict[str, float]] | None = None) -> tuple[np.ndarray, str]:
    """(H, W) heat in [0, 1] at image resolution (maximum over overlapping tiles) and what it shows.

    The anomaly map where the scores carry one, scaled so that 4x the normal tiles' mean D3 is full heat;
    otherwise each tile's normalised score, with the threshold at half heat."""
    h, w = tiling.height, tiling.width
    heat = np.zeros((h, w), dtype=np.float32)
    if scores.amap is not None:
        d3 = (score_stats or {}).get("d3", {}).get("mean")
        full = 4.0 * float(d3) if d3 else float(np.percentile(scores.amap, 99.9)) or 1.0
        for i in range(len(scores)):
            x0, y0, x1, y1 = tiling.rect(i)
            if x1 <= x0 or y1 <= y0:
                continue
            tile = np.clip(scores.amap[i] / full, 0.0, 1.0)
            up = np.asarray(Image.fromarray(tile.astype(np.float32)).resize((x1 - x0, y1 - y0), Image.BILINEAR))
            np.maximum(heat[y0:y1, x0:x1], up, out=heat[y0:y1, x0:x1])
        return heat, "amap"
    scale = 0.5 / threshold if threshold > 0 else 0.5
    for i in range(len(scores)):
        x0, y0, x1, y1 = tiling.rect(i)
        value = float(np.clip(scores.score[i] * scale, 0.0, 1.0))
        np.maximum(heat[y0:y1, x0:x1], value, out=heat[y0:y1, x0:x1])
    return heat, "tile-scores"


def render_overlay(image: np.ndarray, heat: np.ndarray, boxes: list[Box]) -> Image.Image:
    """The image with the heat map blended in (yellow to red) and the defect boxes outlined."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    rgb = rgb.astype(np.float32)
    colour = np.stack([np.full_like(heat, 255.0), 255.0 * (1.0 - heat), np.zeros_like(heat)], axis=2)
    alpha = (0.65 * np.clip((heat - 0.15) / 0.85, 0.0, 1.0))[..., None]
    out = Image.fromarray(np.clip(rgb * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(out)
    for box in boxes:
        draw.rectangle([box.x0, box.y0, box.x1 - 1, box.y1 - 1], outline=(255, 0, 0), width=2)
        draw.text((box.x0 + 3, box.y0 + 2), f"{box.score:.1f}", fill=(255, 255, 255))
    return out


def write_overlay(path: Path, picture: Image.Image) -> Path:
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path
