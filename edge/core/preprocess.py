"""How a model turns images into network inputs (:class:`Preprocess`): resized whole, or scaled and tiled.

A checkpoint, graph and engine each carry their Preprocess, so every stage prepares images the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gedge.core.errors import ConfigError

MODES = ("resize", "patch")


@dataclass(frozen=True)
class Preprocess:
    """How images become network inputs.

    * ``resize``: the whole image is resized to ``isize`` (one input per image).
    * ``patch``: the image is scaled by ``scale`` and cut into ``isize`` tiles with ``stride``; an image's
      score is the maximum over its tiles. This keeps small defects at their native resolution and is
      how line-scan strips are inspected.
    """

    mode: str = "patch"
    isize: int = 64
    channels: int = 3
    scale: float = 1.0
    stride: int = 0  # 0: isize // 2
    source_size: tuple[int, int] | None = None  # (height, width) of the training images

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.05 <= self.scale <= 4.0:
            raise ConfigError(f"scale must be between 0.05 and 4, got {self.scale}")
        if self.stride < 0 or self.stride > self.isize:
            raise ConfigError(f"stride must be 0 (half a tile) to isize ({self.isize}), got {self.stride}")

    @property
    def tile_stride(self) -> int:
        return self.stride or max(1, self.isize // 2)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["source_size"] = list(self.source_size) if self.source_size else None
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Preprocess:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        if known.get("source_size"):
            known["source_size"] = tuple(known["source_size"])
        return cls(**known)
