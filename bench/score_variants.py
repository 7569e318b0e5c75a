"""Other ways to score a trained checkpoint, measured against its primary score (a measurement, not a test)

    python -m gedge.bench.score_variants CHECKPOINT DATA [--json OUT]

Issue 19 asks which scores see real defects. This takes a trained checkpoint as it is (no retraining) and
measures the test image AUROC of scores gedge does not compute today, beside ``d3_local``:

* residuals in other forms, each as a window mean (the model's ``d3_local`` window) and the maximum over windows
  and tiles: ``dark_local`` and ``bright_local`` (the signed residual ``x - G(x)``: the input darker, or brighter,
  than the reconstruction), ``low_local`` (residual of the blurred images), ``high_local`` (of what the blur
  removes), as OCR-GAN splits an image into frequency bands (Liang et al. 2023);
* other pooling of ``d3_local`` over an image's tiles: the mean of the top 3 % of tiles instead of the maximum;
* a global photometric score: ``|z|`` of the image's mean grey level against the validation normals, alone and
  fused with ``d3_local`` (the larger of the two z-scores);
* the Mahalanobis distance of each tile's encoder latent to a Gaussian fitted on the training normals' tiles
  (a density score on GANomaly's own features, as PaDiM does on ImageNet features), maximum over tiles.

Results go to docs/results.md with the checkpoint they came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from gedge.bench.checkpoint_data import normal_split, parse_checkpoint_and_data, z_against
from gedge.core.inputs import camera_to_nchw
from gedge.core.metrics import auroc
from gedge.data.datasets import open_dataset
from gedge.data.tiles import cut, load_prepared
from gedge.reference.checkpoint import load_checkpoint
from gedge.reference.model import local_window

BLUR = 5  # side of the box blur that splits low from high frequencies
TOP_SHARE = 0.03  # the share of tiles the top-share pooling averages
SHRINK = 0.01  # covariance shrinkage towards its mean variance (share of the trace per dimension)
RESIDUALS = ("d3_local", "dark_local", "bright_local", "low_local", "high_local")


def blur(t: torch.Tensor, k: int) -> torch.Tensor:
    """Box blur of side ``k`` (odd), same size, averaging only the pixels inside the image at the borders."""
    return F.avg_pool2d(t, k, stride=1, padding=k // 2, count_include_pad=False)


def window_max(residual: torch.Tensor, window: int) -> torch.Tensor:
    """Per tile: the largest mean of ``residual`` (N, 1, H, W) over ``window`` x ``window`` windows inside it."""
    return F.avg_pool2d(residual, window, stride=1).flatten(1).amax(dim=1)


def residual_scores(x: torch.Tensor, fake: torch.Tensor, window: int) -> dict[str, torch.Tensor]:
    """Every residual variant of :data:`RESIDUALS` per tile, from inputs ``x`` and reconstructions ``fake``."""
    signed = (x - fake).mean(dim=1, keepdim=True)
    low = (blur(x, BLUR) - blur(fake, BLUR)).abs().mean(dim=1, keepdim=True)
    high = ((x - blur(x, BLUR)) - (fake - blur(fake, BLUR))).abs().mean(dim=1, keepdim=True)
    return {"d3_local": window_max((x - fake).abs().mean(dim=1, keepdim=True), window),
            "dark_local": window_max(-signed, window), "bright_local": window_max(signed, window),
            "low_local": window_max(low, window), "high_local": window_max(high, window)}


def top_share_mean(values: np.ndarray, share: float) -> float:
    """The mean of the largest ``share`` of ``values`` (at least one value)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    return float(ordered[: max(1, int(round(share * ordered.size)))].mean())


def gaussian(samples: np.ndarray, shrink: float = SHRINK) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision (inverse covariance) of ``samples`` (rows), the covariance shrunk towards its mean
    variance by ``shrink``."""
    cov = np.atleast_2d(np.cov(samples, rowvar=False))
    cov = cov + shrink * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return samples.mean(axis=0), np.linalg.inv(cov)


def mahalanobis(samples: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``samples``."""
    d = samples - mean
    return np.einsum("ij,jk,ik->i", d, precision, d)


def photometric_fusion(primary: np.ndarray, grey: np.ndarray, normal_primary: np.ndarray,
                       normal_grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|z|`` of each image's mean grey level, and the larger of it and the primary score's z-score (both
    standardised with the normal images' mean and standard deviation)."""
    grey_z = np.abs(z_against(grey, normal_grey))
    primary_z = z_against(primary, normal_primary)
    return grey_z, np.maximum(primary_z, grey_z)


def _tiles_of(netg, images: list[np.ndarray], pre, window: int) -> list[dict[str, np.ndarray]]:
    """Per image: every residual variant per tile, the encoder latents, and the mean grey level."""
    out = []
    with torch.inference_mode():
        for image in images:
            x = camera_to_nchw(torch.from_numpy(cut(image, pre)[0]))
            fake, latent, _ = netg(x)
            row = {name: value.numpy() for name, value in residual_scores(x, fake, window).items()}
            row["latent"] = latent.flatten(1).double().numpy()
            row["grey"] = np.array(float(image.astype(np.float64).mean()))
            out.append(row)
    return out


def measure(checkpoint_path: Path, data: Path) -> dict:
    checkpoint = load_checkpoint(checkpoint_path)
    pre = checkpoint.preprocess
    dataset = open_dataset(data)
    if not checkpoint.facts.get("validation_images"):
        raise SystemExit(f"{checkpoint_path}: the checkpoint does not record its validation images")
    val_paths, train_paths = normal_split(checkpoint, dataset)
    netg, _ = checkpoint.networks()
    window = local_window(pre.isize)  # the scorer's d3_local window

    def rows(paths: list[Path]) -> list[dict[str, np.ndarray]]:
        return _tiles_of(netg, load_prepared(paths, pre, convert=True), pre, window)

    test, val, train = rows(dataset.test.paths), rows(val_paths), rows(train_paths)
    labels = dataset.test.labels
    result: dict[str, float] = {name: auroc(labels, np.array([r[name].max() for r in test])) for name in RESIDUALS}
    result[f"d3_local top {TOP_SHARE:.0%} of tiles"] = auroc(
        labels, np.array([top_share_mean(r["d3_local"], TOP_SHARE) for r in test]))
    grey_z, fused = photometric_fusion(np.array([r["d3_local"].max() for r in test]),
                                       np.array([float(r["grey"]) for r in test]),
                                       np.array([r["d3_local"].max() for r in val]),
                                       np.array([float(r["grey"]) for r in val]))
    result["|z| of mean grey"] = auroc(labels, grey_z)
    result["max(d3_local z, |z| of mean grey)"] = auroc(labels, fused)
    mean, precision = gaussian(np.concatenate([r["latent"] for r in train]))
    result["latent Mahalanobis"] = auroc(labels, np.array([mahalanobis(r["latent"], mean, precision).max()
                                                          for r in test]))
    return {"checkpoint": str(checkpoint_path), "data": str(data), "primary": checkpoint.decision.primary,
            "test_images": len(test), "validation_normals": len(val), "training_normals": len(train),
            "auroc": result}


def main() -> None:
    args = parse_checkpoint_and_data(__doc__.splitlines()[0])
    result = measure(args.checkpoint, args.data)
    print(f"{result['checkpoint']} (primary {result['primary']}, {result['test_images']} test images)")
    for name, value in result["auroc"].items():
        print(f"  {name:38s} {value:6.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
