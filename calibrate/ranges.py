"""Activation ranges of the FP32 graph on a calibration set: the one calibration both INT8 flavours and the
TensorRT calibration cache are made from.

The calibrated tensors are the float inputs and outputs of every Conv and ConvTranspose (the only nodes
that are quantized). The FP32 graph runs on ONNX Runtime with those tensors added as outputs, fed uint8
NHWC batches by :class:`PatchReader` (ONNX Runtime's ``CalibrationDataReader`` interface). Per tensor the
minimum, the maximum and a histogram of ``|x|`` (2048 bins, widened by merging bins when a later batch
exceeds the range) are accumulated in one pass, and the symmetric range ``amax`` is chosen the way
TensorRT's calibrators and NVIDIA's pytorch-quantization choose it:

* ``entropy`` (default): the ``amax`` whose 128-level quantisation of the ``|x|`` histogram has the least
  KL divergence from the histogram (TensorRT's entropy calibration; the first bin is set to the second
  as pytorch-quantization does, so the spike of exact zeros after ReLU does not decide the range);
* ``percentile``: the ``percentile`` (99.99 by default) of ``|x|``;
* ``minmax``: ``max |x|``.

Image-valued tensors are not clipped by any method: the camera input normalised to ``[-1, 1]``, the
generator's Tanh output and their concatenation (the discriminator's input) keep the range their
construction bounds them to (:func:`known_bounds`). A statistic would clip the brightest pixels and the
reconstructions of anomalies, which are exactly what the residual scores compare.

ONNX Runtime's own entropy calibrator is not used: ``quantize_static`` cannot set its bin counts, and with
its default of 128 bins for 128 quantised levels the search has a single candidate, the full range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
import onnxruntime
from gedge.core.errors import ConfigError
from gedge.core.inputs import graph_input
from gedge.core.timing import Stopwatch
from onnx import TensorProto, helper
from onnxruntime.quantization import CalibrationDataReader

METHODS = ("entropy", "percentile", "minmax")
QUANTIZED_OPS = ("Conv", "ConvTranspose")
DEFAULT_PERCENTILE = 99.99
NUM_BINS = 2048
LEVELS = 128  # quantisation levels of |x| for signed 8 bit (TensorRT's entropy calibration)

Progress = Callable[[int, int], None]


class PatchReader(CalibrationDataReader):
    """Feeds a calibration set to a graph in batches, as ONNX Runtime's ``CalibrationDataReader``.

    ``input_kind`` is the graph's: ``uint8-nhwc`` gets the camera bytes as they are, ``float-nchw`` gets
    ``x / 127.5 - 1`` in NCHW (what the uint8 graph computes inside).
    """

    def __init__(self, patches: np.ndarray, input_name: str, input_kind: str = "uint8-nhwc",
                 batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        self.patches = patches
        self.input_name = input_name
        self.input_kind = input_kind
        self.batch_size = batch_size
        self._next = 0

    def __len__(self) -> int:
        return -(-len(self.patches) // self.batch_size)

    def feed(self, batch: np.ndarray) -> np.ndarray:
        return graph_input(batch, self.input_kind)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.patches):
            return None
        batch = self.patches[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        return {self.input_name: self.feed(batch)}

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        self.rewind()
        while (item := self.get_next()) is not None:
            yield item


@dataclass
class TensorRange:
    """One calibrated tensor: observed minimum and maximum, and the symmetric range the method chose."""

    name: str
    min: float
    max: float
    amax: float

    @property
    def scale(self) -> float:
        """The symmetric int8 scale, ``amax / 127`` (what TensorRT's cache stores)."""
        return self.amax / 127.0

    def asymmetric(self) -> tuple[float, float]:
        """``[min, max]`` clipped to ``[-amax, amax]`` (for uint8 activations with a zero point)."""
        return max(self.min, -self.amax), min(self.max, self.amax)


@dataclass
class CalibrationRanges:
    method: str
    tensors: dict[str, TensorRange]
    n_inputs: int
    percentile: float = DEFAULT_PERCENTILE
    set_sha256: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    image_valued: list[str] = field(default_factory=list)  # ranges from the graph's bounds, not from statistics

    def __getitem__(self, name: str) -> TensorRange:
        return self.tensors[name]

    def to_dict(self) -> dict:
        values = asdict(self)
        values["tensors"] = [asdict(t) for t in self.tensors.values()]
        return values


def calibration_tensors(model: onnx.ModelProto, op_types: tuple[str, ...] = QUANTIZED_OPS) -> list[str]:
    """Float activation inputs and outputs of the quantizable nodes, in graph order, each once."""
    initializers = {t.name for t in model.graph.initializer}
    names: dict[str, None] = {}
    for node in model.graph.node:
        if node.op_type in op_types:
            for name in (node.input[0], node.output[0]):
                if name and name not in initializers:
                    names[name] = None
    return list(names)


_PASS_BOUNDS = frozenset({"Cast", "Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Slice"})


def _scalar(model_inits: dict[str, onnx.TensorProto], name: str) -> float | None:
    init = model_inits.get(name)
    if init is None:
        return None
    value = onnx.numpy_helper.to_array(init)
    return float(value.ravel()[0]) if value.size == 1 else None


def known_bounds(model: onnx.ModelProto) -> dict[str, tuple[float, float]]:
    """Float tensors whose range follows from the graph alone: the camera input through its conversion
    (Cast, Transpose, scalar Div/Mul/Sub/Add), Tanh outputs and Concats of bounded tensors."""
    inits = {t.name: t for t in model.graph.initializer}
    bounds: dict[str, tuple[float, float]] = {}
    for value in model.graph.input:
        elem = value.type.tensor_type.elem_type
        bounds[value.name] = (0.0, 255.0) if elem == TensorProto.UINT8 else (-1.0, 1.0)
    for node in model.graph.node:
        ins = [bounds.get(name) for name in node.input[:2]]
        result = None
        if node.op_type == "Tanh":
            result = (-1.0, 1.0)
        elif node.op_type in _PASS_BOUNDS and ins and ins[0] is not None:
            result = ins[0]
        elif node.op_type == "Concat" and all(bounds.get(n) is not None for n in node.input):
            parts = [bounds[n] for n in node.input]
            result = (min(p[0] for p in parts), max(p[1] for p in parts))
        elif node.op_type in ("Div", "Mul", "Sub", "Add") and ins[0] is not None:
            c = _scalar(inits, node.input[1])
            if c is not None and not (node.op_type == "Div" and c == 0):
                lo, hi = ins[0]
                ends = {"Div": (lo / c, hi / c), "Mul": (lo * c, hi * c), "Sub": (lo - c, hi - c),
                        "Add": (lo + c, hi + c)}[node.op_type]
                result = (min(ends), max(ends))
        if result is not None:
            bounds[node.output[0]] = result
    raw = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == TensorProto.UINT8}
    return {name: b for name, b in bounds.items() if name not in raw}


def augmented(model: onnx.ModelProto, tensors: list[str]) -> onnx.ModelProto:
    """A copy of the graph that also outputs ``tensors``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {o.name for o in out.graph.output}
    out.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                            for name in tensors if name not in existing)
    return out


class _Histogram:
    """min, max and a histogram of |x| over [0, top] in ``bins`` bins; the range doubles by merging bins."""

    def __init__(self, bins: int = NUM_BINS) -> None:
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.int64)
        self.top = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, values: np.ndarray) -> None:
        values = values.ravel()
        if not values.size:
            return
        lo, hi = float(values.min()), float(values.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ConfigError("the FP32 graph produced NaN or infinity on the calibration patches")
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        amax = max(abs(lo), abs(hi))
        if amax == 0.0:
            self.counts[0] += values.size
            return
        if self.top == 0.0:
            self.top = amax
        while amax > self.top:  # double the range: pairs of bins merge into the lower half
            self.counts = np.concatenate([self.counts.reshape(-1, 2).sum(axis=1),
                                          np.zeros(self.bins // 2, dtype=np.int64)])
            self.top *= 2.0
        index = np.minimum((np.abs(values) * (self.bins / self.top)).astype(np.int64), self.bins - 1)
        self.counts += np.bincount(index, minlength=self.bins)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(0.0, self.top, self.bins + 1)


def entropy_amax(counts: np.ndarray, edges: np.ndarray, levels: int = LEVELS) -> float:
    """TensorRT's entropy calibration on a histogram of |x|: the clipping point with the least KL divergence
    between the clipped histogram and its ``levels``-level quantisation."""
    hist = counts.astype(np.float64).copy()
    last = int(np.flatnonzero(hist)[-1]) + 1 if hist.any() else 0
    if last <= levels:  # the data fit in fewer bins than there are levels: nothing to clip
        return float(edges[max(last, 1)])
    hist[0] = hist[1]
    total = hist.sum()
    best_i, best_kl = last, np.inf
    for i in range(levels, last + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        group = (np.arange(i) * levels) // i  # which of the `levels` quantised bins each bin falls in
        nonzero = hist[:i] > 0
        sums = np.bincount(group, weights=hist[:i], minlength=levels)
        occupied = np.bincount(group, weights=nonzero, minlength=levels)
        q = np.where(nonzero, sums[group] / np.maximum(occupied[group], 1), 0.0)
        if not q.sum() or abs(p.sum() - total) > 1e-6 * total:
            continue
        p /= p.sum()
        q /= q.sum()
        mask = p > 0
        if np.any(q[mask] == 0):
            continue  # outliers piled onto an empty last bin: infinite divergence
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl <= best_kl:  # ties: the larger range, as pytorch-quantization does
            best_i, best_kl = i, kl
    return float(edges[best_i])


def percentile_amax(counts: np.ndarray, edges: np.ndarray, percentile: float) -> float:
    cdf = np.cumsum(counts) / max(1, counts.sum())
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return float(edges[min(index + 1, len(edges) - 1)])


def choose_amax(hist: _Histogram, method: str, percentile: float = DEFAULT_PERCENTILE) -> float:
    observed = max(abs(hist.min), abs(hist.max)) if np.isfinite(hist.min) else 0.0
    if observed == 0.0:
        return 1e-8  # a tensor that is always zero: any positive scale quantises it exactly
    if method == "minmax":
        return observed
    if method == "percentile":
        amax = percentile_amax(hist.counts, hist.edges, percentile)
    else:
        amax = entropy_amax(hist.counts, hist.edges)
    return float(min(max(amax, 1e-8), observed))


def collect_ranges(model: onnx.ModelProto, reader: PatchReader, method: str = "entropy",
                   percentile: float = DEFAULT_PERCENTILE, threads: int = 0,
                   progress: Progress | None = None) -> CalibrationRanges:
    """Run the FP32 graph on the reader's batches and choose every calibrated tensor's range."""
    if method not in METHODS:
        raise ConfigError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 50.0 < percentile <= 100.0:
        raise ConfigError(f"percentile must be in (50, 100], got {percentile}")
    watch = Stopwatch()
    tensors = calibration_tensors(model)
    if not tensors:
        raise ConfigError("the graph has no Conv or ConvTranspose to calibrate")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(augmented(model, tensors).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    histograms = {name: _Histogram() for name in tensors}
    total, done = len(reader), 0
    n_inputs = 0
    for feed in reader:
        outputs = session.run(tensors, feed)
        n_inputs += next(iter(feed.values())).shape[0]
        for name, value in zip(tensors, outputs):
            histograms[name].add(value)
        done += 1
        if progress:
            progress(done, total)
    if not n_inputs:
        raise ConfigError("the calibration set is empty")
    bounded = known_bounds(model)
    ranges = {}
    for name, h in histograms.items():
        if name in bounded:  # image-valued: the full range it is built to have
            lo, hi = bounded[name]
            ranges[name] = TensorRange(name, lo, hi, max(abs(lo), abs(hi)))
        else:
            ranges[name] = TensorRange(name, float(h.min), float(h.max), choose_amax(h, method, percentile))
    image_valued = [n for n in histograms if n in bounded]
    notes = [f"{len(image_valued)} image-valued tensors keep their full range ({', '.join(image_valued)})"]
    return CalibrationRanges(method, ranges, n_inputs, percentile, seconds=watch.seconds(2),
                             notes=notes, image_valued=image_valued)
