"""The inspector: images through a backend with the model's preprocessing and threshold, one report per image.

Each image is cut by the one tiler (:func:`gedge.data.tiles.tile_image`): the network inputs are the ones evaluation,
parity and the INT8 gate score for the same image, at the model's own stride unless ``overlap`` asks for another."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gedge.core.artifacts import Artifact
from gedge.core.backend import Backend
from gedge.core.errors import ConfigError
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.core.timing import Stopwatch
from gedge.data.images import read_image
from gedge.data.tiles import Tiling, tile_image
from gedge.inspection.boxes import Box, merge_boxes
from gedge.inspection.overlays import heat_map, render_overlay, write_overlay
from gedge.runtime.loop import ItemResult, Pipeline


@dataclass(frozen=True)
class InspectOptions:
    overlap: float | None = None  # None: the model's own stride (Preprocess.stride); else the share of a tile
    batch_size: int = 64
    threshold: float | None = None  # None: the model's
    overlays: Path | None = None
    convert: bool = False  # convert grayscale/RGB to the model's channels instead of failing
    all_tiles: bool = False  # every tile's score and decision in the record, not only those over threshold
    workers: int | None = None
    slots: int = 2

    def __post_init__(self) -> None:
        if self.overlap is not None and not 0.0 <= self.overlap <= 0.9:
            raise ConfigError(f"overlap must be between 0 and 0.9, got {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")


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
    error_kind: str | None = None  # "input" (unreadable, corrupt or unsuitable image) or "runtime" (backend failed)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_record(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error, "error_kind": self.error_kind}
        record = asdict(self)
        record.pop("error")
        record.pop("error_kind")
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
    overlap: float  # the share of a tile that neighbouring tiles share (patch mode)
    stride: int  # pixels between neighbouring tiles of the scaled image (patch mode)
    batch_size: int
    images: int = 0
    rejected: int = 0
    accepted: int = 0
    errors: int = 0  # images without a decision: input_errors + runtime_errors
    input_errors: int = 0  # unreadable, corrupt or unsuitable images (exit code 2)
    runtime_errors: int = 0  # images whose batch failed on the backend (exit code 3)
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


class Inspector:
    """Runs images through a backend with the model's preprocessing and threshold."""

    def __init__(self, backend: Backend, artifact: Artifact, options: InspectOptions = InspectOptions()) -> None:
        self.backend = backend
        self.artifact = artifact
        self.options = options
        self.pre = artifact.preprocess
        self.threshold = float(artifact.threshold if options.threshold is None else options.threshold)
        self.score_stats = artifact.model_facts().score_stats
        overlap = options.overlap
        self.stride = None if overlap is None else max(1, int(round(self.pre.isize * (1.0 - overlap))))
        self.pipeline = Pipeline(backend, batch_size=options.batch_size, slots=options.slots,
                                 workers=options.workers)
        stride = self.stride or self.pre.tile_stride
        self.summary = InspectSummary(str(artifact.path), backend.name, self.threshold,
                                      1.0 - stride / self.pre.isize, stride, self.pipeline.batch_size)
        self._overlay_names: set[str] = set()

    def prepare(self, path: Path) -> tuple[np.ndarray, Tiling]:
        image = read_image(Path(path), self.pre.channels, self.options.convert)
        tiles, tiling = tile_image(image, self.pre, path, self.stride)
        if self.options.overlays is not None:
            tiling.image = image
        return tiles, tiling

    def report(self, result: ItemResult) -> ImageReport:
        path = str(result.item)
        if not result.ok:
            return ImageReport(path, error=result.error, error_kind=result.error_kind or "input")
        tiling: Tiling = result.meta
        scores: Scores = result.scores  # type: ignore[assignment]
        broken = int((~np.isfinite(scores.score)).sum())
        if broken:  # NaN is never over the threshold: it must not pass as an accepted image
            return ImageReport(path, error=f"{path}: the backend returned non-finite scores (NaN or infinity) for "
                                           f"{broken} of {len(scores)} tiles", error_kind="runtime")
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
        watch = Stopwatch()
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
                    s.runtime_errors += report.error_kind == "runtime"
                    s.input_errors += report.error_kind != "runtime"
                if progress:
                    progress(done, len(paths))
                yield report
        finally:
            self.pipeline.close()
            s.seconds = watch.seconds()
