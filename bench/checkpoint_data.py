"""What the post-hoc measurement scripts share: their command line (a checkpoint and its data folder, ``--json``),
the split of the data set's normal images into the validation normals a checkpoint held out and the rest, and
scores put in units of the normal images' spread."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from gedge.data.datasets import Dataset, split_validation
from gedge.reference.checkpoint import Checkpoint


def checkpoint_and_data_parser(description: str) -> argparse.ArgumentParser:
    """``CHECKPOINT DATA [--json OUT]``, for a script to add its own options to."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--json", type=Path, help="write the measurements here too")
    return parser


def parse_checkpoint_and_data(description: str) -> argparse.Namespace:
    """``CHECKPOINT DATA [--json OUT]``, parsed."""
    return checkpoint_and_data_parser(description).parse_args()


def training_seed(checkpoint: Checkpoint) -> int:
    """The seed the checkpoint was trained with (0 where it does not record one)."""
    config = checkpoint.facts.get("train_config", {})
    return int(config.get("seed", 0))


def normal_split(checkpoint: Checkpoint, dataset: Dataset) -> tuple[list[Path], list[Path]]:
    """(validation normals, training normals): the images the checkpoint records as held out (else the same seeded
    split training makes), and every other training image."""
    config = checkpoint.facts.get("train_config", {})
    val_paths = [Path(p) for p in checkpoint.facts.get("validation_images", [])]
    if not val_paths:
        _, val_paths = split_validation(dataset.train, float(config.get("val_fraction", 0.15)),
                                        training_seed(checkpoint))
    held_out = {str(p) for p in val_paths}
    return val_paths, [p for p in dataset.train if str(p) not in held_out]


def z_against(values: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``values`` in standard deviations of the normal images' scores, from their mean."""
    return (values - normal.mean()) / (normal.std() + 1e-12)
