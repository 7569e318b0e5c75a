"""TODO: docstring (split from gedge.runtime.base)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from gedge.core.errors import DataError


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
