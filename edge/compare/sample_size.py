"""The fewest images a limit can judge: below it, the limit fails as "too few images to judge (N < M)".

On a handful of images the measures mean nothing: with 2 images Spearman is +-1, and a shuffled candidate reaches
the INT8 floor of 0.9 in about 50 % of random trials with 2 images, 17 % with 3, 4 % with 4 and 5, 0.3 % with 7 and
0.04 % with 10 (the share of random permutations of n ranks with rho >= 0.9). A limit that cannot tell a broken
candidate from a true one on that many images fails instead of passing: the limits set's ``min_images`` bounds
every limit over the images, its ``min_normals`` those over one class (the decision margin and the false rejects
over the normal images, the agreement over the anomalous ones).
"""

from __future__ import annotations

from dataclasses import dataclass

from gedge.compare.limits import ParityLimits


@dataclass(frozen=True)
class ImageCounts:
    """How many images a comparison has: all of them, the normal ones (labelled, or the reference's accepted
    ones where there are no labels), and the labelled anomalous ones (0 without labels)."""

    images: int
    normal: int
    anomalous: int = 0
    labelled: bool = False  # both classes labelled: AUROC is compared


def too_few(limits: ParityLimits, counts: ImageCounts) -> list[str]:
    """A failure line for every limit of ``limits`` that ``counts`` are too few to judge."""
    lines = []
    n, least = counts.images, limits.min_images
    if n < least:
        judged = ["relative L2 error", "Spearman", "score shift"]
        judged += ["AUROC"] if counts.labelled else []
        judged += ["decision agreement"] if limits.min_agreement is not None else []
        lines += [f"{name}: too few images to judge ({n} < {least})" for name in judged]
    elif counts.normal < limits.min_normals:
        lines.append(f"score shift: too few images to judge the decision margin ({counts.normal} normal images < "
                     f"{limits.min_normals})")
    if counts.labelled and limits.max_new_false_rejects is not None and counts.normal < limits.min_normals:
        lines.append(f"false rejects on normal images: too few images to judge ({counts.normal} normal images < "
                     f"{limits.min_normals})")
    if counts.labelled and limits.min_anomalous_agreement is not None and counts.anomalous < limits.min_normals:
        lines.append(f"agreement on anomalous images: too few images to judge ({counts.anomalous} anomalous "
                     f"images < {limits.min_normals})")
    return lines
