"""Lay out the ELPV solar-cell images as two MVTec AD style data sets (mono, poly), for measurement only.

The ELPV data set (Buerhop-Lutz et al. 2018, Deitsch et al. 2019) holds 2,624 electroluminescence images of solar
cells, 300 x 300 grayscale, each with a defect probability (0, 1/3, 2/3, 1) and a cell type (mono or poly). Its
licence is CC BY-NC-SA 4.0: gedge never depends on it, never ships it and never needs it in `make test`. Install it
where you measure (`pip install elpv-dataset`) and run::

    python bench/elpv_layout.py OUT_DIR [--test-good 0.3] [--seed 0]

This writes ``OUT_DIR/elpv_mono`` and ``OUT_DIR/elpv_poly``, each with ``train/good``, ``test/good`` and
``test/defect`` (no masks: the data set has none). Probability 0 is good, 0.5 or more is a defect, the uncertain
1/3 images are left out. A fixed seeded share of the good cells (30 % by default) goes to ``test/good``, the rest
to ``train/good``. The same seed gives the same split on every machine. A ``MANIFEST.txt`` in each folder records
the source, licence, counts and split.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from gedge.core.errors import ConfigError
from gedge.core.optional import require

LICENCE = "CC BY-NC-SA 4.0 (measurement only: never copied into the gedge repository)"
CITATION = ("Buerhop-Lutz et al., A benchmark for visual identification of defective solar cells in "
            "electroluminescence imagery, EU PVSEC 2018; Deitsch et al., Solar Energy 185 (2019)")


def elpv_labels() -> tuple[Path, list[tuple[str, float, str]]]:
    """The installed package's data folder and its (relative path, probability, type) rows."""
    try:
        elpv_dataset = require("elpv_dataset", "the ELPV measurement sets")  # never a dependency of gedge
    except ConfigError as exc:
        sys.exit(f"elpv_layout: {exc.problem}")
    root = Path(elpv_dataset.__file__).parent / "data"
    rows = []
    with open(root / "labels.csv", newline="") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 3:
                rows.append((parts[0], float(parts[1]), parts[2]))
    return root, rows


def split(good: list[str], test_share: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test) of the good cells: a seeded permutation, ``test_share`` of them to the test set."""
    order = np.random.default_rng(seed).permutation(len(good))
    n_test = int(round(test_share * len(good)))
    test = sorted(good[i] for i in order[:n_test])
    train = sorted(good[i] for i in order[n_test:])
    return train, test


def write_set(out: Path, root: Path, parts: dict[str, list[str]], note: str) -> dict[str, int]:
    """Copy the images of each part (``train/good`` ...) into ``out``; write its MANIFEST."""
    if out.exists():
        shutil.rmtree(out)
    counts = {}
    for part, names in parts.items():
        folder = out / part
        folder.mkdir(parents=True)
        for name in names:
            shutil.copyfile(root / name, folder / Path(name).name)
        counts[part] = len(names)
    lines = [f"{out.name}: ELPV electroluminescence solar cells, MVTec AD folder layout", "",
             f"Source  : the elpv-dataset package (PyPI), {CITATION}", f"Licence : {LICENCE}", f"Split   : {note}", ""]
    lines += [f"  {part:<14}{n:>5}" for part, n in counts.items()]
    (out / "MANIFEST.txt").write_text("\n".join(lines) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder that receives elpv_mono/ and elpv_poly/")
    parser.add_argument("--test-good", type=float, default=0.3, help="share of the good cells held out for testing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the good cells' split")
    args = parser.parse_args(argv)
    if not 0.05 <= args.test_good <= 0.9:
        parser.error(f"--test-good must be between 0.05 and 0.9, got {args.test_good}")
    root, rows = elpv_labels()
    for cell_type in ("mono", "poly"):
        good = [path for path, p, t in rows if t == cell_type and p == 0.0]
        defect = sorted(path for path, p, t in rows if t == cell_type and p >= 0.5)
        train, test = split(sorted(good), args.test_good, args.seed)
        note = (f"probability 0 -> good, >= 0.5 -> defect, 1/3 left out; {args.test_good:g} of the good cells "
                f"to test/good by a permutation with seed {args.seed}")
        counts = write_set(args.out / f"elpv_{cell_type}", root,
                           {"train/good": train, "test/good": test, "test/defect": defect}, note)
        print(f"elpv_{cell_type}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
