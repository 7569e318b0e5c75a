"""TODO: docstring (split from gedge.calibrate.cache)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from gedge.core.atomic import write_with
from gedge.core.errors import ArtifactError, ConfigError

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")


DEFAULT_ALGORITHM = "EntropyCalibration2"


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


def write_cache(cache: CalibrationCache, path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ArtifactError("cache path is a folder; give a file name such as scorer.int8.calib.cache", path)
    return write_with(path, lambda tmp: tmp.write_text(cache.text()))


def parse_cache(text: str, path: str | Path | None = None) -> CalibrationCache:
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


def read_cache(path: str | Path) -> CalibrationCache:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("calibration cache does not exist", path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"calibration cache is unreadable ({exc.__class__.__name__})", path) from None
    return parse_cache(text, path)
