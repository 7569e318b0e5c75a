"""The one interface every backend implements (torch reference, onnxruntime, OpenVINO, TensorRT)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from gedge.core.inputs import InputSpec
from gedge.core.scores import Scores


@runtime_checkable
class Backend(Protocol):
    """Scores a uint8 NHWC batch; the same named outputs for the same input on every backend."""

    name: str
    input_spec: InputSpec

    def score(self, batch: np.ndarray) -> Scores: ...

    def close(self) -> None: ...
