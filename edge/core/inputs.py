"""What a scorer takes: the input contract (:class:`InputSpec`) and the one camera normalisation.

Every backend takes uint8 NHWC camera bytes. A uint8 graph converts them inside (its first nodes are
:func:`camera_to_nchw`, exported from torch); a graph exported with a float NCHW input gets the same conversion
on the host (:func:`graph_input`). Both run the same function, so both compute the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class InputSpec:
    """What a backend takes: a batch of ``size`` x ``size`` images with ``channels`` channels."""

    size: int
    channels: int
    dtype: str = "uint8"
    layout: str = "NHWC"

    def check(self, batch: np.ndarray) -> None:
        want = (self.size, self.size, self.channels) if self.layout == "NHWC" else (self.channels, self.size, self.size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != want:
            raise DataError(f"input batch has shape {tuple(batch.shape)}, expected (N, {', '.join(map(str, want))})")
        if batch.dtype != np.dtype(self.dtype):
            raise DataError(f"input batch has dtype {batch.dtype}, expected {self.dtype}")

    def to_dict(self) -> dict:
        return asdict(self)


INPUT_KINDS = ("uint8-nhwc", "float-nchw")


def camera_to_nchw(pixels: Any) -> Any:
    """uint8 NHWC camera bytes to float32 NCHW in [-1, 1]: ``x / 127.5 - 1``.

    Takes a numpy array or a torch tensor (the exported graph computes it with torch operations, hosts feeding
    a float-input graph with numpy). The cast comes first: TensorRT's parser takes uint8 only into a Cast.
    """
    if hasattr(pixels, "permute"):  # a torch tensor (no torch import here: devices run without it)
        x = pixels.float().permute(0, 3, 1, 2)
    else:
        x = np.asarray(pixels).astype(np.float32).transpose(0, 3, 1, 2)
    return x / 127.5 - 1.0


def graph_input(batch: np.ndarray, input_kind: str) -> np.ndarray:
    """What a graph of ``input_kind`` takes for a uint8 NHWC batch, as one contiguous array."""
    if input_kind == "uint8-nhwc":
        return np.ascontiguousarray(batch)
    if input_kind == "float-nchw":
        return np.ascontiguousarray(camera_to_nchw(batch))
    raise ConfigError(f"graph input must be one of {', '.join(INPUT_KINDS)}, got {input_kind!r}")
