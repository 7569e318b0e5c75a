"""The galleries of worst cases: the missed defects with the lowest scores and the rejected normals with the
highest, each as thumbnails of the image, its heat-map overlay and its ground-truth mask, embedded as data URIs.

The heat map is the anomaly map |x - G(x)| at image resolution in matplotlib's "turbo" colours (blue: none, red:
full), blended half into the image, on one scale for every case (:func:`heat_scale`). It comes
from the scoring where the model gave maps; else the gallery's images are scored again with maps, by the model
where it has an ``amap`` output, or by its torch reference checkpoint where one is here; else the gallery says
why there are none.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gedge.core.optional import require
from gedge.data.images import read_image
from gedge.reference.evaluate import EvaluationOptions, score_test_set
from gedge.reference.localise import read_mask
from gedge.report.evaluation import Evaluation
from gedge.report.model import open_reference, open_scorer
from PIL import Image

THUMBNAIL = 176  # pixels, the longer side: a gallery of 1,000 cases stays a few MB
JPEG_QUALITY = 82


@dataclass(frozen=True)
class Picture:
    uri: str  # data:image/...;base64,...
    width: int
    height: int


@dataclass
class Case:
    """One image of a gallery."""

    index: int  # in the evaluated test set
    name: str  # its path under the data folder
    defect_class: str
    score: float
    image: Picture | None = None
    overlay: Picture | None = None
    mask: Picture | None = None


@dataclass
class Gallery:
    key: str  # missed or rejected
    title: str
    total: int  # every image of its kind; ``cases`` holds the first ``limit`` of them
    cases: list[Case] = field(default_factory=list)
    listed: list[Case] = field(default_factory=list)  # all of them, without pictures
    heat_note: str = ""


def missed_defects(labels: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Defective images accepted (score under the threshold), lowest score first."""
    found = np.flatnonzero((labels == 1) & (scores < threshold))
    return [int(i) for i in found[np.argsort(scores[found], kind="stable")]]


def rejected_normals(labels: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Normal images rejected (score at or over the threshold), highest score first."""
    found = np.flatnonzero((labels == 0) & (scores >= threshold))
    return [int(i) for i in found[np.argsort(-scores[found], kind="stable")]]


def data_uri(picture: Image.Image, fmt: str = "JPEG") -> Picture:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        picture.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        picture.save(buffer, format=fmt, optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Picture(f"data:image/{fmt.lower()};base64,{encoded}", picture.width, picture.height)


def png_picture(png: bytes) -> Picture:
    """PNG bytes (a chart) as a data URI, as they are."""
    with Image.open(io.BytesIO(png)) as picture:
        width, height = picture.size
    return Picture("data:image/png;base64," + base64.b64encode(png).decode("ascii"), width, height)


def thumbnail(picture: Image.Image) -> Image.Image:
    picture = picture.copy()
    picture.thumbnail((THUMBNAIL, THUMBNAIL), Image.BILINEAR)
    return picture


def heat_scale(maps: list[np.ndarray]) -> tuple[float, float]:
    """One heat scale for every case of the galleries: from the cases' typical background (the median of their
    maps' medians) to full heat at the highest of their 99.9th percentiles, so that cases compare by colour."""
    if not maps:
        return 0.0, 1.0
    low = float(np.median([np.median(m) for m in maps]))
    high = float(max(np.percentile(m, 99.9) for m in maps))
    return low, high if high > low else low + 1e-6


def heat_of(amap: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """The anomaly map as heat in [0, 1] on the galleries' scale."""
    low, high = scale
    return np.clip((amap - low) / (high - low), 0.0, 1.0).astype(np.float32)


def overlay(rgb: np.ndarray, heat: np.ndarray) -> Image.Image:
    """The heat in "turbo" colours blended half into the image."""
    colours = require("matplotlib", "the evaluation report").colormaps["turbo"](heat)[..., :3] * 255.0
    return Image.fromarray(np.clip(0.5 * rgb + 0.5 * colours, 0, 255).astype(np.uint8), "RGB")


def case_name(path: Path, data: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(data).resolve()))
    except ValueError:
        return Path(path).name


def _pictures(case: Case, evaluation: Evaluation, amap: np.ndarray | None, scale: tuple[float, float]) -> None:
    test = evaluation.scored.test
    rgb = read_image(test.paths[case.index], 3, convert=True)
    case.image = data_uri(thumbnail(Image.fromarray(rgb, "RGB")))
    if amap is not None:
        case.overlay = data_uri(thumbnail(overlay(rgb, heat_of(amap, scale))))
    mask_path = test.mask_paths[case.index] if test.mask_paths else None
    if mask_path is not None:
        mask = read_mask(mask_path, rgb.shape[:2])
        case.mask = data_uri(thumbnail(Image.fromarray((mask * 255).astype(np.uint8), "L")), "PNG")


def case_maps(evaluation: Evaluation, indices: list[int], batch_size: int = 64) -> tuple[dict[int, np.ndarray], str]:
    """Anomaly maps of the images ``indices``, and where they come from (or why there are none)."""
    scored, model = evaluation.scored, evaluation.model
    if scored.maps is not None:
        return {i: scored.maps[i] for i in indices}, f"heat maps: the anomaly map of {model.path.name}"
    if not indices:
        return {}, ""
    backend, source = None, ""
    if model.has_amap:
        backend, source = open_scorer(model, with_amap=True), f"the anomaly map of {model.path.name}"
    else:
        backend = open_reference(model)
        source = (f"the torch reference {model.reference_path.name} ({model.path.name} has no amap output)"
                  if backend is not None else "")
    if backend is None:
        return {}, f"no heat maps: {model.path.name} has no amap output and {model.reference_note}"
    keep = np.zeros(len(scored.test.paths), dtype=bool)
    keep[indices] = True
    try:
        again = score_test_set(backend, scored.test.subset(keep), model.preprocess, EvaluationOptions(batch_size))
    finally:
        backend.close()
    order = [int(i) for i in np.flatnonzero(keep)]
    return dict(zip(order, again.maps or [])), f"heat maps: {source}"


def build_galleries(evaluation: Evaluation, limit: int, batch_size: int = 64) -> list[Gallery]:
    """The two galleries, each with its first ``limit`` cases in pictures and all of them listed."""
    labels, scores, threshold = evaluation.labels, evaluation.scores, evaluation.model.decision.threshold
    test, data = evaluation.scored.test, evaluation.data
    kinds = [("missed", "Missed defects (accepted, lowest score first)", missed_defects(labels, scores, threshold)),
             ("rejected", "Rejected normals (highest score first)", rejected_normals(labels, scores, threshold))]
    shown = sorted({i for _, _, found in kinds for i in found[:limit]})
    maps, note = case_maps(evaluation, shown, batch_size)
    scale = heat_scale(list(maps.values()))
    if maps:
        note += f" (|x - G(x)|, one scale for every case: {scale[0]:.3g} is no heat, {scale[1]:.3g} full heat)"
    galleries = []
    for key, title, found in kinds:
        listed = [Case(i, case_name(test.paths[i], data), test.classes[i], float(scores[i])) for i in found]
        for case in listed[:limit]:
            _pictures(case, evaluation, maps.get(case.index), scale)
        galleries.append(Gallery(key, title, len(found), listed[:limit], listed, note))
    return galleries
