"""Small builders shared by tests: tiny images, tiny data sets, tiny trained checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze() if array.shape[-1] == 1 else array).save(path)
    return path


def textured(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A wood-like striped texture: vertical grain with noise."""
    x = np.arange(size)[None, :, None]
    base = 150 + 30 * np.sin(x / 3.0 + rng.uniform(0, 6)) + rng.normal(0, 6, (size, size, 3))
    base = base * np.array([1.0, 0.85, 0.6])
    return np.clip(base, 0, 255).astype(np.uint8)


def defect(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    y, x = rng.integers(8, image.shape[0] - 16, 2)
    out[y:y + 10, x:x + 10] = 20
    return out


def make_mvtec(root: Path, n_train: int = 12, n_good: int = 6, n_bad: int = 6, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n_train):
        write_png(root / "train" / "good" / f"{i:03d}.png", textured(rng, size))
    for i in range(n_good):
        write_png(root / "test" / "good" / f"{i:03d}.png", textured(rng, size))
    for i in range(n_bad):
        write_png(root / "test" / "knot" / f"{i:03d}.png", defect(textured(rng, size), rng))
    return root


def scorer_artifact(pre, threshold: float = 3.0, primary: str = "d1", path: str = "fake.onnx"):
    """A scorer's facts as gedge reads them from a file, without the file: for a backend a test makes itself."""
    from gedge.core.artifacts import Artifact
    from gedge.core.artifacts.facts import ModelFacts
    from gedge.core.decision import DecisionRule
    from gedge.core.scores import OUTPUT_NAMES

    facts = ModelFacts("fp32", "uint8-nhwc", "pixels", OUTPUT_NAMES, {"isize": pre.isize, "nc": pre.channels}, pre,
                       DecisionRule(primary, threshold=threshold))
    return Artifact(Path(path), "graph", "", facts)
