"""Inspection of images and line-scan strips: tiles, a decision per tile and per image, defect boxes, overlays.

An image of any size (a 256 x 256 board, a 256 x 4096 line-scan strip) is cut into tiles the model takes:

* patch mode: the image is scaled by the model's ``scale`` and cut into ``isize`` tiles; ``overlap`` sets the
  stride (0.5: half a tile, the training default; 0: tiles side by side);
* resize mode: square windows of the image's short side (or the training image size), with ``overlap``
  along the long side, each resized to ``isize``; an image of the training size is one window.

Every tile gets the model's scores and a decision (normalised score >= threshold); an image is rejected when
any of its tiles is. Tiles over the threshold that overlap or touch are merged into defect boxes (image
pixels). With ``overlays`` set, a PNG per image shows the heat map (the anomaly map |x - G(x)| where the model
gives one, else the tile scores) and the boxes; overlays are written atomically.

The tiles of all images go through the pipelined loop (:mod:`gedge.runtime.loop`): decoding and tiling on CPU
threads, batches in flight on the backend, results in input order. An image that cannot be read is reported
with its error and skipped; the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.atomic import atomic_path
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError, DataError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.data.images import read_image, resize
from gedge.data.tiles import tile_origins
from gedge.runtime.loop import ItemResult, Pipeline
from gedge.runtime.registry import ModelInfo
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class InspectOptions:
    overlap: float = 0.5
    batch_size: int = 64
    threshold: float | None = None  # None: the model's
    overlays: Path | None = None
    convert: bool = False  # convert grayscale/RGB to the model's channels instead of failing
    all_tiles: bool = False  # every tile's score and decision in the record, not only those over threshold
    workers: int | None = None
    slots: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap <= 0.9:
            raise ConfigError(f"overlap must be between 0 and 0.9, got {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")


@dataclass
class Tiling:
    """Where an image's tiles lie, in image pixels."""

    height: int
    width: int
    window: float  # tile side in image pixels
    origins: list[tuple[float, float]]  # (y, x) of each tile, image pixels
    image: np.ndarray | None = None  # kept for overlays only

    def rect(self, i: int) -> tuple[int, int, int, int]:
        """Tile ``i`` as (x0, y0, x1, y1), clipped to the image."""
        y, x = self.origins[i]
        return (int(round(x)), int(round(y)), min(self.width, int(round(x + self.window))),
                min(self.height, int(round(y + self.window))))


def tile_image(image: np.ndarray, pre: Preprocess, overlap: float,
               path: Path | None = None) -> tuple[np.ndarray, Tiling]:
    """The network inputs (uint8 NHWC) of an image of any size and where each lies in the image."""
    h, w = image.shape[:2]
    if pre.mode == "patch":
        scale = pre.scale
        scaled = image if scale == 1.0 else resize(image, max(1, round(h * scale)), max(1, round(w * scale)))
        if scaled.shape[0] < pre.isize or scaled.shape[1] < pre.isize:
            raise DataError(f"image is {w}x{h}, smaller than one {pre.isize}x{pre.isize} tile at scale {scale:g}",
                            path)
        stride = max(1, int(round(pre.isize * (1.0 - overlap))))
        ys = tile_origins(scaled.shape[0], pre.isize, stride)
        xs = tile_origins(scaled.shape[1], pre.isize, stride)
        tiles = np.stack([scaled[y:y + pre.isize, x:x + pre.isize] for y in ys for x in xs])
        sy, sx = h / scaled.shape[0], w / scaled.shape[1]
        origins = [(y * sy, x * sx) for y in ys for x in xs]
        return tiles, Tiling(h, w, pre.isize * (sy + sx) / 2, origins)
    side = min(h, w)
    if pre.source_size and min(pre.source_size) <= side:
        side = min(pre.source_size)
    stride = max(1, int(round(side * (1.0 - overlap))))
    origins = [(y, x) for y in tile_origins(h, side, stride) for x in tile_origins(w, side, stride)]
    tiles = np.stack([resize(np.ascontiguousarray(image[y:y + side, x:x + side]), pre.isize, pre.isize)
                      for y, x in origins])
    return tiles, Tiling(h, w, float(side), [(float(y), float(x)) for y, x in origins])


@dataclass
class Box:
    """Merged over-threshold tiles: image pixels (x1, y1 exclusive), the highest tile score, the tile count."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float
    tiles: int

    def intersects(self, other: tuple[int, int, int, int]) -> bool:
        x0, y0, x1, y1 = other
        return self.x0 < x1 and x0 < self.x1 and self.y0 < y1 and y0 < self.y1


def merge_boxes(rects: list[tuple[int, int, int, int]], scores: list[float]) -> list[Box]:
    """Groups of rectangles that overlap or touch, each as its bounding box (highest score first)."""
    n = len(rects)
    if not n:
        return []
    r = np.asarray(rects, dtype=np.int64)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # touching counts (<=): tiles side by side with no overlap are one defect
    near = ((r[:, None, 0] <= r[None, :, 2]) & (r[None, :, 0] <= r[:, None, 2])
            & (r[:, None, 1] <= r[None, :, 3]) & (r[None, :, 1] <= r[:, None, 3]))
    for i, j in zip(*np.nonzero(np.triu(near, 1))):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[b] = a
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    boxes = []
    for members in groups.values():
        g = r[members]
        boxes.append(Box(int(g[:, 0].min()), int(g[:, 1].min()), int(g[:, 2].max()), int(g[:, 3].max()),
                         float(max(scores[i] for i in members)), len(members)))
    return sorted(boxes, key=lambda b: -b.score)


@dataclass
class ImageReport:
    """One image's inspection (or the error that stopped it)."""

    path: str
    width: int = 0
    height: int = 0
    tiles: int = 0
    score: float = float("nan")
    anomalous: bool = False
    scores: dict[str, float] = field(default_factory=dict)  # image scores: maximum over tiles
    tiles_over: list[dict[str, Any]] = field(default_factory=list)  # x, y, w, h, score of tiles over threshold
    boxes: list[Box] = field(default_factory=list)
    tile_scores: list[float] | None = None  # with all_tiles
    overlay: str | None = None
    heat: str | None = None  # what the overlay shows: amap or tile-scores
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_record(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        record = asdict(self)
        record.pop("error")
        if self.tile_scores is None:
            record.pop("tile_scores")
        if self.overlay is None:
            record.pop("overlay")
            record.pop("heat")
        return record


@dataclass
class InspectSummary:
    model: str
    backend: str
    threshold: float
    overlap: float
    batch_size: int
    images: int = 0
    rejected: int = 0
    accepted: int = 0
    errors: int = 0
    tiles: int = 0
    boxes: int = 0
    seconds: float = 0.0

    @property
    def tiles_per_second(self) -> float:
        return self.tiles / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["tiles_per_second"] = round(self.tiles_per_second, 1)
        values["seconds"] = round(self.seconds, 3)
        return values


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


class Inspector:
    """Runs images through a backend with the model's preprocessing and threshold."""

    def __init__(self, backend: Backend, info: ModelInfo, options: InspectOptions = InspectOptions(),
                 score_stats: dict[str, dict[str, float]] | None = None) -> None:
        self.backend = backend
        self.info = info
        self.options = options
        self.pre = info.preprocess
        self.threshold = float(info.threshold if options.threshold is None else options.threshold)
        self.score_stats = score_stats
        self.pipeline = Pipeline(backend, batch_size=options.batch_size, slots=options.slots,
                                 workers=options.workers)
        self.summary = InspectSummary(str(info.path), getattr(backend, "name", "?"), self.threshold,
                                      options.overlap, self.pipeline.batch_size)
        self._overlay_names: set[str] = set()

    def prepare(self, path: Path) -> tuple[np.ndarray, Tiling]:
        image = read_image(Path(path), self.pre.channels, self.options.convert)
        tiles, tiling = tile_image(image, self.pre, self.options.overlap, path)
        if self.options.overlays is not None:
            tiling.image = image
        return tiles, tiling

    def report(self, result: ItemResult) -> ImageReport:
        path = str(result.item)
        if not result.ok:
            return ImageReport(path, error=result.error)
        tiling: Tiling = result.meta
        scores: Scores = result.scores  # type: ignore[assignment]
        over = np.flatnonzero(scores.score >= self.threshold)
        rects = [tiling.rect(int(i)) for i in over]
        tile_values = [float(scores.score[i]) for i in over]
        report = ImageReport(
            path, tiling.width, tiling.height, len(scores), float(scores.score.max()),
            bool(len(over)), {name: float(scores.named(name).max()) for name in OUTPUT_NAMES},
            [{"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0, "score": round(v, 4)}
             for (x0, y0, x1, y1), v in zip(rects, tile_values)],
            merge_boxes(rects, tile_values))
        if self.options.all_tiles:
            report.tile_scores = [round(float(v), 4) for v in scores.score]
        if self.options.overlays is not None and tiling.image is not None:
            heat, kind = heat_map(tiling, scores, self.threshold, self.pre, self.score_stats)
            name = f"{Path(path).stem}.overlay.png"
            if name in self._overlay_names:
                name = f"{Path(path).stem}-{result.index}.overlay.png"
            self._overlay_names.add(name)
            target = write_overlay(self.options.overlays / name, render_overlay(tiling.image, heat, report.boxes))
            report.overlay, report.heat = str(target), kind
            tiling.image = None
        return report

    def run(self, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> Iterator[ImageReport]:
        started = time.perf_counter()
        s = self.summary
        try:
            for done, result in enumerate(self.pipeline.run(paths, self.prepare), start=1):
                report = self.report(result)
                s.images += 1
                if report.ok:
                    s.tiles += report.tiles
                    s.rejected += report.anomalous
                    s.accepted += not report.anomalous
                    s.boxes += len(report.boxes)
                else:
                    s.errors += 1
                if progress:
                    progress(done, len(paths))
                yield report
        finally:
            self.pipeline.close()
            s.seconds = time.perf_counter() - started
