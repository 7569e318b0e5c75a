"""A whole-image view, measured on a trained checkpoint: the same network scores the image shrunk so that a tile
covers most or all of it, beside its native tiles.

Defects larger than a tile (the solar cells' dark regions) look normal tile by tile: a tile model reconstructs a
dark tile as dark. A coarser view of the same image puts such a region inside one input. This script measures,
without retraining, the test image AUROC of each view (the maximum of its tiles' ``d3_local`` or ``d3``) and of
their fusion: each view's image scores z-scored against the checkpoint's validation normals, and the maximum of
the two z-scores::

    python -m gedge.bench.whole_view CHECKPOINT DATA [--factor 0.125] [--json OUT]

``--factor`` multiplies the checkpoint's own scale (0.125 turns a 256 px board into one 32 px tile). The
measurements are in docs/results.md ("A whole-image view").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from gedge.bench.checkpoint_data import checkpoint_and_data_parser, normal_split, z_against
from gedge.core.atomic import write_json
from gedge.core.metrics import auroc
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import open_dataset
from gedge.data.tiles import load_prepared, network_counts, score_images
from gedge.reference.checkpoint import load_checkpoint
from gedge.reference.decision_fit import tile_statistics
from gedge.reference.evaluate import candidate_image_scores
from gedge.reference.scoring import ReferenceScorer

VIEW_SCORES = ("d3_local", "d3")  # the scores each view is measured with
NATIVE_SCORE = "d3_local"  # the native view's score in the fusion (the default primary)


def max_z_fusion(first: np.ndarray, second: np.ndarray, first_normal: np.ndarray,
                 second_normal: np.ndarray) -> np.ndarray:
    """The larger of the two views' z-scores, each against its own normal images."""
    return np.maximum(z_against(first, first_normal), z_against(second, second_normal))


def _view_scores(scorer: ReferenceScorer, pre: Preprocess, val_paths: list[Path],
                 test_paths: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """(validation image scores, test image scores, tiles per test image) of every score in VIEW_SCORES."""
    val_images = load_prepared(val_paths, pre, convert=True)
    test_images = load_prepared(test_paths, pre, convert=True)
    val_tiles = score_images(scorer, val_images, pre)[1]
    test_tiles = score_images(scorer, test_images, pre)[1]
    stats = tile_statistics(val_tiles)
    test_counts = network_counts(test_images, pre)
    val = candidate_image_scores(val_tiles, network_counts(val_images, pre), stats)
    test = candidate_image_scores(test_tiles, test_counts, stats)
    return ({name: val[name] for name in VIEW_SCORES}, {name: test[name] for name in VIEW_SCORES},
            test_counts[0])


def measure(checkpoint_path: Path, data: Path, factor: float) -> dict:
    checkpoint = load_checkpoint(checkpoint_path)
    dataset = open_dataset(data)
    val_paths, _ = normal_split(checkpoint, dataset)
    scorer = ReferenceScorer(checkpoint)
    labels = dataset.test.labels
    native_pre = checkpoint.preprocess
    whole_pre = replace(native_pre, scale=native_pre.scale * factor)
    native_val, native_test, native_tiles = _view_scores(scorer, native_pre, val_paths, dataset.test.paths)
    whole_val, whole_test, whole_tiles = _view_scores(scorer, whole_pre, val_paths, dataset.test.paths)
    out: dict = {"checkpoint": str(checkpoint_path), "data": str(data), "factor": factor,
                 "native_scale": native_pre.scale, "whole_scale": whole_pre.scale,
                 "tiles_per_image": {"native": native_tiles, "whole": whole_tiles}, "auroc": {}}
    for name in VIEW_SCORES:
        out["auroc"][f"native {name}"] = auroc(labels, native_test[name])
        out["auroc"][f"whole {name}"] = auroc(labels, whole_test[name])
    for name in VIEW_SCORES:
        fused = max_z_fusion(native_test[NATIVE_SCORE], whole_test[name], native_val[NATIVE_SCORE], whole_val[name])
        out["auroc"][f"max z: native {NATIVE_SCORE}, whole {name}"] = auroc(labels, fused)
    return out


def main() -> None:
    parser = checkpoint_and_data_parser(__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=0.125, help="the whole view's scale, times the checkpoint's")
    args = parser.parse_args()
    if not 0.0 < args.factor < 1.0:
        parser.error(f"--factor must be between 0 and 1, got {args.factor}")
    result = measure(args.checkpoint, args.data, args.factor)
    tiles = result["tiles_per_image"]
    print(f"{result['checkpoint']}: native scale {result['native_scale']:.3f} ({tiles['native']} tiles per image), "
          f"whole view {result['whole_scale']:.3f} ({tiles['whole']})")
    for name, value in result["auroc"].items():
        print(f"  {name:40s} {value:.3f}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
