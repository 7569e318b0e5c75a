"""Would normalising each tile's scores by its position's statistics help this checkpoint? (a measurement, not a test)

    python -m gedge.bench.position_norm CHECKPOINT DATA [--json OUT]

Aligned products (solar cells, printed parts: every image shows the part in the same place) have busbars, edges
and printed marks at fixed positions, and those dominate a maximum over tiles. This scores, with the checkpoint's
own preprocessing, the normal images the training held out for validation (the same seeded split), the training
normals and the labelled test images, then for every candidate score compares the test image AUROC of

* ``raw``: the maximum over an image's tiles, as gedge decides today, and
* ``position``: the maximum over tiles of ``(value - mean_k) / std_k``, where ``k`` is the tile's position in the
  image and ``mean_k``, ``std_k`` come from normal images only (the validation normals, or all training normals).

It also prints the label-free alignment measure a default would decide on: the share of the normal tiles'
variance that the tile position explains (between-position variance over total variance, per score), less the
share that the finite number of images gives by chance. Results
go to docs/results.md with the checkpoint they came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from gedge.bench.checkpoint_data import normal_split, parse_checkpoint_and_data, training_seed
from gedge.core.decision import DecisionRule
from gedge.core.metrics import auroc
from gedge.core.scores import CANDIDATE_SCORES, Scores
from gedge.data.datasets import open_dataset
from gedge.data.tiles import load_prepared, network_counts, score_images
from gedge.reference.checkpoint import load_checkpoint
from gedge.reference.decision_fit import tile_statistics
from gedge.reference.scoring import ReferenceScorer

STD_FLOOR = 0.25  # a position's std is at least this share of the score's std over all normal tiles


def per_position(values: np.ndarray, counts: list[int]) -> np.ndarray:
    """Tile values as (images, positions); every image must have the same number of tiles."""
    if len(set(counts)) != 1:
        raise SystemExit(f"the images give {sorted(set(counts))} tiles: position statistics need one size")
    return values.reshape(len(counts), counts[0])


def position_table(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each position's mean and (floored) std over normal images."""
    mean, std = normal.mean(axis=0), normal.std(axis=0)
    return mean, np.maximum(std, STD_FLOOR * normal.std() + 1e-12)


def explained_share(normal: np.ndarray) -> float:
    """The share of the normal tiles' variance that their position explains."""
    total = normal.var()
    return float(normal.mean(axis=0).var() / total) if total > 0 else 0.0


def beyond_chance(share: float, images: int) -> float:
    """The explained share less what ``images`` images give by chance alone (a position mean over n images varies
    by 1/n of the tiles' variance when position explains nothing), rescaled to [0, 1]."""
    chance = 1.0 / images
    return max(0.0, (share - chance) / (1.0 - chance)) if images > 1 else 0.0


def candidates(tiles: Scores, stats: dict) -> dict[str, np.ndarray]:
    return {name: DecisionRule.candidate(name, stats).raw(tiles) for name in CANDIDATE_SCORES}


def measure(checkpoint_path: Path, data: Path) -> dict:
    checkpoint = load_checkpoint(checkpoint_path)
    pre = checkpoint.preprocess
    dataset = open_dataset(data)
    seed = training_seed(checkpoint)
    val_paths, train_paths = normal_split(checkpoint, dataset)
    scorer = ReferenceScorer(checkpoint)

    def tiles_of(paths: list[Path]) -> tuple[Scores, list[int]]:
        images = load_prepared(paths, pre, convert=True)
        return score_images(scorer, images, pre)[1], network_counts(images, pre)

    val_tiles, val_counts = tiles_of(val_paths)
    train_tiles, train_counts = tiles_of(train_paths)
    test_tiles, test_counts = tiles_of(dataset.test.paths)
    stats = tile_statistics(val_tiles)
    values = {"validation": candidates(val_tiles, stats), "training": candidates(train_tiles, stats)}
    test = candidates(test_tiles, stats)
    counts = {"validation": val_counts, "training": train_counts}
    labels = dataset.test.labels
    out: dict = {"checkpoint": str(checkpoint_path), "data": str(data), "seed": seed,
                 "primary": checkpoint.decision.primary, "tiles_per_image": test_counts[0], "scores": {}}
    for name in CANDIDATE_SCORES:
        test_grid = per_position(test[name], test_counts)
        row = {"raw": auroc(labels, test_grid.max(axis=1))}
        for source in ("validation", "training"):
            normal = per_position(values[source][name], counts[source])
            mean, std = position_table(normal)
            row[f"position_{source}"] = auroc(labels, ((test_grid - mean) / std).max(axis=1))
            row[f"explained_{source}"] = beyond_chance(explained_share(normal), len(normal))
        out["scores"][name] = row
    return out


def main() -> None:
    args = parse_checkpoint_and_data(__doc__.splitlines()[0])
    result = measure(args.checkpoint, args.data)
    print(f"{result['checkpoint']} ({result['tiles_per_image']} tiles per image, primary {result['primary']})")
    print(f"{'score':26s} {'raw':>6s} {'pos(val)':>8s} {'pos(train)':>10s} {'expl(val)':>9s} {'expl(train)':>11s}")
    for name, row in result["scores"].items():
        print(f"{name:26s} {row['raw']:6.3f} {row['position_validation']:8.3f} {row['position_training']:10.3f} "
              f"{row['explained_validation']:9.3f} {row['explained_training']:11.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
