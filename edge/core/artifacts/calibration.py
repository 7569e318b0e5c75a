"""INT8 calibration's files: a TensorRT calibration cache (:class:`CalibrationCache`, TensorRT's own text format), the
facts next to it (:class:`CalibrationFacts`, ``<cache>.json``: ``docs/schemas/calibration-cache.schema.json``) and
the facts of a calibration set (:class:`CalibrationSetFacts`, ``calibration.npz.json``:
``docs/schemas/calibration-set.schema.json``).

A cache is a header ``TRT-<version>-<algorithm>`` and one line per tensor, ``<tensor name>: <scale>``, the scale
``amax / 127`` as the big-endian hex of its float32 bits (:mod:`gedge.calibrate.cache` says how gedge writes one).
Its facts bind it to the FP32 graph it belongs to (that graph's sha256) and carry the verdict of the accuracy gate
of the Q/DQ graph made from the same ranges, so that ``gedge build`` can refuse a cache whose graph failed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts.records import CalibrationSetRef, GateRecord
from gedge.core.errors import ArtifactError, ConfigError

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")


DEFAULT_ALGORITHM = "EntropyCalibration2"


SET_FORMAT = "gedge-calibration-set"


_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def version_code(version: str) -> str:
    """TensorRT's ``NV_TENSORRT_VERSION`` for a version string: ``8.6.1`` -> ``8601``, ``10.3.0`` -> ``100300``."""
    parts = version.strip().split(".")
    try:
        numbers = [int(p) for p in parts[:3]] + [0] * (3 - len(parts[:3]))
    except ValueError:
        raise ConfigError(f"TensorRT version must look like 8.6.1 or 10.3.0, got {version!r}") from None
    major, minor, patch = numbers
    if major < 5:
        raise ConfigError(f"TensorRT version must be 5 or later, got {version!r}")
    return str(major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch)


def scale_hex(scale: float) -> str:
    """The big-endian hex of a float32, as TensorRT writes scales (0.0078125 -> ``3c000000``)."""
    return struct.pack(">f", scale).hex()


def hex_scale(text: str) -> float:
    if not re.fullmatch(r"[0-9a-fA-F]{1,8}", text):
        raise ValueError(f"not a hex float32: {text!r}")
    return struct.unpack(">f", bytes.fromhex(text.zfill(8)))[0]


@dataclass
class CalibrationCache:
    """A TensorRT calibration cache: per tensor scale (``amax / 127``)."""

    version: str  # the header's number, e.g. "8601"
    algorithm: str
    scales: dict[str, float] = field(default_factory=dict)

    def amax(self, name: str) -> float:
        return self.scales[name] * 127.0

    def header(self) -> str:
        return f"TRT-{self.version}-{self.algorithm}"

    def text(self) -> str:
        return "\n".join([self.header(), *(f"{name}: {scale_hex(s)}" for name, s in self.scales.items())]) + "\n"


def parse_cache(text: str, path: str | Path | None = None) -> CalibrationCache:
    """A cache from its text; ArtifactError naming the line that does not parse."""
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    if not lines or not (match := _HEADER.match(lines[0].strip())):
        raise ArtifactError("not a TensorRT calibration cache (first line is not TRT-<version>-<algorithm>)", path)
    cache = CalibrationCache(match.group(1), match.group(2))
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        try:
            if not sep or not name:
                raise ValueError("no 'name: scale'")
            cache.scales[name] = hex_scale(value.strip())
        except ValueError as exc:
            raise ArtifactError(f"line {number} of the calibration cache does not parse ({exc})", path) from None
    return cache


@dataclass(frozen=True)
class CalibrationFacts:
    """The facts next to a calibration cache: the cache and its sha256, the TensorRT version and method of its
    scales, the FP32 graph it belongs to and that graph's sha256, the calibration set, and the accuracy gate's
    verdict on the Q/DQ graph made from the same ranges."""

    cache: str
    sha256: str
    header: str
    tensorrt_version: str
    method: str
    tensors: int
    graph: str
    graph_sha256: str
    gate: GateRecord
    calibration_set: CalibrationSetRef | None = None
    use: str = ""  # how to build with it

    def to_dict(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k not in ("gate", "calibration_set")}
        values["calibration_set"] = None if self.calibration_set is None else self.calibration_set.to_dict()
        values["gate"] = self.gate.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path | None = None) -> CalibrationFacts:
        try:
            return cls(str(values["cache"]), str(values["sha256"]), str(values.get("header") or ""),
                       str(values.get("tensorrt_version") or ""), str(values.get("method") or ""),
                       int(values.get("tensors") or 0), str(values.get("graph") or ""), str(values["graph_sha256"]),
                       GateRecord.from_dict(values.get("gate")),
                       CalibrationSetRef.from_dict(values.get("calibration_set")), str(values.get("use") or ""))
        except KeyError as exc:
            raise ArtifactError(f"calibration cache sidecar lacks {exc}", where) from None
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"calibration cache sidecar does not parse: {exc}", where) from None


@dataclass(frozen=True)
class CalibrationSetFacts:
    """The facts of a calibration set (``calibration.npz.json``): the sha256 of the C-ordered patch bytes, their
    shape, the source images and how many patches each gave, the seed and the way they were drawn."""

    sha256: str
    shape: tuple[int, ...]
    sources: tuple[str, ...] = ()
    seed: int = 0
    method: str = ""
    per_source: tuple[int, ...] = ()
    preprocess: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # where the sources were found (the checkpoint's data, or --data)
    excluded: dict[str, int] = field(default_factory=dict)  # why images were left out, and how many
    warnings: tuple[str, ...] = ()
    file: str = ""
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(format=SET_FORMAT, shape=list(self.shape), n_patches=self.shape[0] if self.shape else 0,
                      sources=list(self.sources), per_source=list(self.per_source), warnings=list(self.warnings))
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path | None = None) -> CalibrationSetFacts:
        if values.get("format") != SET_FORMAT:
            raise ArtifactError("not a gedge calibration set sidecar", where)
        try:
            return cls(str(values["sha256"]), tuple(int(d) for d in values.get("shape") or ()),
                       tuple(str(s) for s in values.get("sources") or ()), int(values.get("seed") or 0),
                       str(values.get("method") or ""), tuple(int(n) for n in values.get("per_source") or ()),
                       dict(values.get("preprocess") or {}), str(values.get("origin") or ""),
                       {str(k): int(v) for k, v in (values.get("excluded") or {}).items()},
                       tuple(str(w) for w in values.get("warnings") or ()), str(values.get("file") or ""),
                       str(values.get("created") or ""))
        except KeyError as exc:
            raise ArtifactError(f"calibration set sidecar lacks {exc}", where) from None
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"calibration set sidecar does not parse: {exc}", where) from None
