"""TensorRT calibration caches: for TensorRT 8.5 to 10.x users who build with implicit calibration
(``trtexec --int8 --calib=scorer.int8.calib.cache`` or an ``IInt8Calibrator`` whose
``read_calibration_cache`` returns the file).

The format is the text TensorRT's calibrators write::

    TRT-8601-EntropyCalibration2
    netg.encoder1.main.0/Conv:0: 3c010a14
    ...

a header ``TRT-<version>-<algorithm>`` and one line per tensor, ``<tensor name>: <scale>``, the scale
``amax / 127`` as the big-endian hex of its float32 bits. Tensor names are the FP32 ONNX graph's (TensorRT's
ONNX parser names network tensors after them). ``<version>`` is TensorRT's ``NV_TENSORRT_VERSION``:
``major * 1000 + minor * 100 + patch`` up to 9.x (8.6.1 is ``8601``), ``major * 10000 + minor * 100 + patch``
from 10.0 (10.3.0 is ``100300``). TensorRT ignores a cache whose algorithm is not its calibrator's, and
``trtexec --calib`` uses an entropy calibrator 2, so the header says ``EntropyCalibration2`` whichever method
chose the ranges (the method is in the sidecar and in the INT8 graphs' metadata).

The inputs of the convolutions the Q/DQ graph keeps in float (those reading an image) are left out by
`gedge calibrate`, so implicit calibration keeps the same layers out of INT8 (TensorRT warns that they fall
back). TensorRT 11 removed implicit INT8; there, and on every version, the Q/DQ graph carries the same ranges.
"""

from __future__ import annotations

import struct

from gedge.calibrate.ranges import CalibrationRanges
from gedge.core.artifacts.calibration import ALGORITHMS, DEFAULT_ALGORITHM, CalibrationCache, version_code
from gedge.core.errors import ConfigError

DEFAULT_TRT_VERSION = "8.6.1"


def cache_from_ranges(ranges: CalibrationRanges, tensor_names: set[str] | None = None,
                      trt_version: str = DEFAULT_TRT_VERSION, algorithm: str = DEFAULT_ALGORITHM,
                      leave_out: set[str] | frozenset[str] = frozenset()) -> CalibrationCache:
    """The cache of calibrated ranges; ``tensor_names`` (those of the FP32 graph) must contain every tensor.

    ``leave_out``: tensors TensorRT should not quantize (a tensor without a scale makes the layers that read it
    fall back from INT8, as the float image convolutions of the Q/DQ graph do)."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if tensor_names is not None:
        missing = [n for n in ranges.tensors if n not in tensor_names]
        if missing:
            raise ConfigError(f"calibrated tensors not in the graph: {', '.join(missing[:5])}")
    if any("\n" in n or "\r" in n for n in ranges.tensors):
        raise ConfigError("tensor names with line breaks cannot be written to a TensorRT cache")
    scales = {name: float(struct.unpack(">f", struct.pack(">f", r.scale))[0]) for name, r in ranges.tensors.items()
              if name not in leave_out}
    return CalibrationCache(version_code(trt_version), algorithm, scales)
