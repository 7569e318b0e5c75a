"""The named scores every backend returns, the candidate primary scores, and how tile scores become image scores.

A primary score (the one the decision is made on) is one of the residual scores, or a fusion of several: the
mean of their z-scores, each normalised with the normal tiles' mean and standard deviation, so that scores of
different scales weigh alike (``d1_local+d3_local``: D1 and D3 at the defect's scale). Training chooses among
:data:`CANDIDATE_SCORES` on validation data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from gedge.core.errors import ConfigError

SCORE_NAMES: tuple[str, ...] = ("d1", "d2", "d3", "latent", "d1_local", "d3_local")


OUTPUT_NAMES: tuple[str, ...] = (*SCORE_NAMES, "score")


# Fusions offered as primary scores: the two local scores (a defect seen by the discriminator's features or the
# pixels), the two global ones, and all four.
FUSED_SCORES: tuple[str, ...] = ("d1_local+d3_local", "d1+d3", "d1+d3+d1_local+d3_local")


CANDIDATE_SCORES: tuple[str, ...] = (*SCORE_NAMES, *FUSED_SCORES)


def components(primary: str) -> tuple[str, ...]:
    """The residual scores a primary score is made of (one for a plain score, several for a fusion)."""
    parts = tuple(primary.split("+"))
    if any(p not in SCORE_NAMES for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"primary score must be one of {', '.join(SCORE_NAMES)} or several of them joined by "
                          f"'+', got {primary!r}")
    return parts


def fused(values: dict[str, np.ndarray], parts: tuple[str, ...], means: tuple[float, ...],
          stds: tuple[float, ...]) -> np.ndarray:
    """The mean z-score of ``parts`` (each ``(value - mean) / std``), per input."""
    return np.mean([(np.asarray(values[p], dtype=np.float64) - m) / s for p, m, s in zip(parts, means, stds)],
                   axis=0)


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
