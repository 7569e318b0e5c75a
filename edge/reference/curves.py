"""The training curve: validation AUROC per score and the reconstruction error at every validation step, written
next to the checkpoint as JSON (``<checkpoint>.curve.json``) and as a PNG chart (``<checkpoint>.curve.png``).

The chart is drawn with Pillow (no plotting library): the upper panel holds one line per candidate score
(proxy AUROC on the validation set), the best step marked; the lower panel the validation normals' mean
reconstruction error |x - G(x)|.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gedge.core.atomic import atomic_path, write_json
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 900, 560
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP = 60, 170, 30
AUROC_PANEL, RECON_PANEL, GAP = 330, 120, 40
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def curve_paths(checkpoint: Path) -> tuple[Path, Path]:
    return checkpoint.with_name(checkpoint.name + ".curve.json"), checkpoint.with_name(checkpoint.name + ".curve.png")


def _scale(values: Sequence[float], low: float, high: float, top: int, height: int) -> list[float]:
    span = (high - low) or 1.0
    return [top + height - (v - low) / span * height for v in values]


def _axis(draw: ImageDraw.ImageDraw, top: int, height: int, low: float, high: float, label: str) -> None:
    right = WIDTH - MARGIN_RIGHT
    draw.rectangle([MARGIN_LEFT, top, right, top + height], outline=(0, 0, 0))
    for i in range(5):
        value = low + (high - low) * i / 4
        y = _scale([value], low, high, top, height)[0]
        draw.line([MARGIN_LEFT, y, right, y], fill=(225, 225, 225))
        draw.text((4, y - 6), f"{value:.3g}", fill=(0, 0, 0))
    draw.text((MARGIN_LEFT, top - 16), label, fill=(0, 0, 0))


def draw_curve(steps: list[int], series: dict[str, list[float]], recon: list[float], best_step: int) -> Image.Image:
    """The two panels as a picture (steps on the x axis)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    x0, x1 = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    first, last = min(steps), max(steps)
    xs = [x0 + (s - first) / ((last - first) or 1) * (x1 - x0) for s in steps]
    values = [v for line in series.values() for v in line]
    low, high = min([*values, 0.5]), max([*values, 1.0])
    top = MARGIN_TOP
    _axis(draw, top, AUROC_PANEL, low, high, "validation AUROC (normals vs proxy anomalies)")
    for i, (name, line) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        draw.line(list(zip(xs, _scale(line, low, high, top, AUROC_PANEL))), fill=colour, width=2)
        draw.text((x1 + 10, top + 14 * i), name, fill=colour)
    bx = xs[steps.index(best_step)] if best_step in steps else None
    recon_top = top + AUROC_PANEL + GAP
    _axis(draw, recon_top, RECON_PANEL, min(recon), max(recon), "reconstruction error |x - G(x)| (normals)")
    draw.line(list(zip(xs, _scale(recon, min(recon), max(recon), recon_top, RECON_PANEL))), fill=(0, 0, 0), width=2)
    if bx is not None:
        draw.line([bx, top, bx, recon_top + RECON_PANEL], fill=(200, 0, 0), width=1)
        draw.text((bx + 3, top + 2), f"best step {best_step}", fill=(200, 0, 0))
    draw.text((x0, recon_top + RECON_PANEL + 6), f"step {first}", fill=(0, 0, 0))
    draw.text((x1 - 60, recon_top + RECON_PANEL + 6), f"step {last}", fill=(0, 0, 0))
    return image


def write_training_curve(checkpoint: Path, history: list[dict[str, Any]], best_step: int,
                         notes: list[str]) -> tuple[Path, Path]:
    """``history``: one dict per validation (step, proxy_auroc per score, recon_l1, ...). Both files atomic."""
    json_path, png_path = curve_paths(Path(checkpoint))
    write_json(json_path, {"checkpoint": Path(checkpoint).name, "best_step": best_step, "notes": notes,
                           "validations": history})
    steps = [int(h["step"]) for h in history]
    names = list(history[0]["proxy_auroc"]) if history else []
    series = {name: [float(h["proxy_auroc"][name]) for h in history] for name in names}
    picture = draw_curve(steps, series, [float(h["recon_l1"]) for h in history], best_step) if history else \
        Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    with atomic_path(png_path) as tmp:
        picture.save(tmp, format="PNG")
    return json_path, png_path
