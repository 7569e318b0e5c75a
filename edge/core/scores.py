"""The named scores every backend returns, and how tile scores become image scores."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

SCORE_NAMES: tuple[str, ...] = ("d1", "d2", "d3", "latent", "d1_local", "d3_local")


OUTPUT_NAMES: tuple[str, ...] = (*SCORE_NAMES, "score")


@dataclass
class Scores:
    """Per-input float32 scores; ``score`` is the normalised primary score, ``amap`` optional (N, H, W).

    ``from_dict`` copies, so a Scores never shares memory with the arrays it was built from.
    """

    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    latent: np.ndarray
    d1_local: np.ndarray
    d3_local: np.ndarray
    score: np.ndarray
    amap: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def named(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def as_dict(self, with_amap: bool = False) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in OUTPUT_NAMES}
        if with_amap and self.amap is not None:
            out["amap"] = self.amap
        return out

    @classmethod
    def from_dict(cls, values: dict[str, np.ndarray]) -> Scores:
        kwargs = {f.name: None if values.get(f.name) is None else np.array(values[f.name], dtype=np.float32)
                  for f in fields(cls)}
        return cls(**kwargs)

    @classmethod
    def concat(cls, parts: list[Scores]) -> Scores:
        if not parts:
            raise ValueError("no scores to concatenate")
        has_amap = all(p.amap is not None for p in parts)
        values = {name: np.concatenate([p.named(name) for p in parts]) for name in OUTPUT_NAMES}
        values["amap"] = np.concatenate([p.amap for p in parts]) if has_amap else None
        return cls.from_dict(values)

    def take(self, index: np.ndarray | slice) -> Scores:
        values = {name: self.named(name)[index] for name in OUTPUT_NAMES}
        values["amap"] = None if self.amap is None else self.amap[index]
        return Scores.from_dict(values)


def aggregate_max(tile_scores: Scores, tiles_per_image: list[int]) -> Scores:
    """Image scores as the maximum over each image's tiles (a defect anywhere makes the image abnormal)."""
    bounds = np.cumsum([0, *tiles_per_image])
    values: dict[str, np.ndarray] = {}
    for name in OUTPUT_NAMES:
        column = tile_scores.named(name)
        values[name] = np.array([column[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.float32)
    return Scores.from_dict(values)
