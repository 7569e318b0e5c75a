"""How training images reach the network, chosen from the images when the user does not say.

The rule, from the survey of the training images (:mod:`gedge.data.survey`):

* channels: 1 when every image is grayscale, else 3 (mixed folders are converted when read);
* patch mode, tiles of 32 x 32, at the scale that brings the median image's short side to about 256 pixels
  (never enlarging): eight tile widths across, so that thin and small defects (cracks, pits) keep a few pixels
  at the network's input. The seed paper's 256 x 256 wood patches keep their size; a 500 x 1250 line-scan image
  gets 0.5 (at 0.25 its thin cracks fell under a pixel: docs/training.md);
* resize mode (the whole image resized to 32 x 32) for images whose short side is under 64 pixels, where tiling
  leaves too little to tile;
* images smaller than a tile at that scale are padded (by reflection) to one tile, so mixed sizes need no flag.

Every option the user gives wins over the rule; the choice and its reasons go into the checkpoint's facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gedge.core.preprocess import Preprocess
from gedge.data.survey import ImageSurvey

TARGET_SHORT_SIDE = 256  # pixels across the median image's short side after scaling
TILE = 32
SMALL_IMAGE = 64  # below this short side, the whole image is one input (resize mode)


@dataclass(frozen=True)
class InputRequest:
    """What the user fixed (None: choose from the images)."""

    mode: str | None = None
    isize: int | None = None
    scale: float | None = None
    stride: int = 0
    channels: int | None = None


@dataclass
class InputChoice:
    preprocess: Preprocess
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"preprocess": self.preprocess.to_dict(), "reasons": list(self.reasons)}


def _scale_for(median_side: float) -> float:
    scale = min(1.0, TARGET_SHORT_SIDE / median_side)
    return float(max(0.05, round(scale * 20) / 20))  # steps of 0.05: 0.5, 0.25, 0.65 ...


def choose_inputs(survey: ImageSurvey, request: InputRequest = InputRequest()) -> InputChoice:
    """The preprocessing for training on the surveyed images, and why."""
    median = float(np.median(survey.short_sides))
    reasons = []
    channels = request.channels if request.channels is not None else survey.channels
    if request.channels is None:
        kind = "grayscale" if channels == 1 else "colour"
        reasons.append(f"channels {channels}: the training images are {kind}" +
                       (f" ({survey.converted} converted)" if survey.converted else ""))
    mode = request.mode or ("resize" if median < SMALL_IMAGE else "patch")
    if request.mode is None:
        reasons.append(f"mode {mode}: median short side {median:.0f} px "
                       + (f"under {SMALL_IMAGE} px: the whole image is one input" if mode == "resize"
                          else "leaves room for tiles"))
    isize = request.isize or TILE
    if request.isize is None:
        reasons.append(f"input size {isize} px")
    scale = request.scale if request.scale is not None else (_scale_for(median) if mode == "patch" else 1.0)
    if request.scale is None and mode == "patch":
        reasons.append(f"scale {scale:g}: brings the median short side ({median:.0f} px) to about "
                       f"{TARGET_SHORT_SIDE} px, {TARGET_SHORT_SIDE // isize} tile widths")
    if survey.mixed_sizes:
        reasons.append(f"mixed image sizes (short sides {int(survey.short_sides.min())} to "
                       f"{int(survey.short_sides.max())} px): "
                       + ("every image is resized to the input size" if mode == "resize"
                          else "tiled as they are; an image smaller than a tile is padded to one"))
    pre = Preprocess(mode=mode, isize=isize, channels=channels, scale=scale, stride=request.stride)
    return InputChoice(pre, reasons)


