"""The firmware step of ``make gpu-check``: the C++ runtime's ``gedge-score`` against ``gedge score --json``.

Builds edge/firmware linked against this machine's TensorRT and CUDA (``edge/firmware/gpu_build.sh``), writes the
test images of the check's data set as frames at the model's scale (what a camera pipeline hands the firmware),
and scores them twice: ``gedge-score --prescaled`` on each engine the check built, and ``gedge score --json`` on
the same checkpoint with its frame scale set to 1 (the frames are already scaled; tiles and weights are the same).
The FP32 engine must agree with the PyTorch reference by the comparator of `gedge parity` (FP32 limits, relative
L2 per score <= 1e-4 as the printed floats allow) and give identical numbers with and without CUDA graphs; FP16
and INT8 are reported. Skipped with the reason where no engine was built or the runtime cannot be built here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from gedge.compare.comparator import BackendScores, ImageSetFacts, ParityReport, compare_scores
from gedge.compare.limits import limits_for
from gedge.core import artifacts
from gedge.core.artifacts.manifest import FORMAT_VERSION as MANIFEST_VERSION
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.data.images import list_images, read_image
from gedge.data.tiles import prepare
from gedge.reference.checkpoint import load_checkpoint, save_checkpoint
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FP32_MAX_REL_L2 = 1e-4
FIRMWARE_MANIFEST_VERSION = 2  # the manifest format edge/firmware/src/manifest.cpp reads


class FirmwareSkip(Exception):
    """The step cannot run here (the reason is the message)."""


def build_gedge_score() -> Path:
    env = {**os.environ, "PYTHON": sys.executable, "GEDGE_JOBS": os.environ.get("GEDGE_JOBS", str(os.cpu_count() or 2))}
    run = subprocess.run(["bash", str(ROOT / "edge/firmware/gpu_build.sh")], capture_output=True, text=True, env=env,
                         check=False)
    last = (run.stdout.strip().splitlines() or [""])[-1]
    if run.returncode == 3:
        raise FirmwareSkip(last.removeprefix("skip: "))
    if run.returncode != 0:
        raise AssertionError(f"the firmware build failed: {(run.stdout + run.stderr).strip()[-600:]}")
    return Path(last)


def write_frames(checkpoint: Any, data: Path, folder: Path) -> list[Path]:
    """The data set's test images, prepared (scaled) as the model does, as PNG frames."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [p for d in sorted((data / "test").iterdir()) if d.is_dir() for p in list_images(d)]
    frames = []
    for i, source in enumerate(sources):
        image = prepare(read_image(source, checkpoint.preprocess.channels), checkpoint.preprocess, source)
        path = folder / f"{i:03d}_{source.parent.name}.png"
        Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(path)
        frames.append(path)
    return frames


def json_lines(command: list[str], what: str) -> list[dict[str, Any]]:
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise AssertionError(f"{what} failed (exit {run.returncode}): {run.stderr.strip()[-400:]}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


def frame_scores(records: list[dict[str, Any]], name: str) -> BackendScores:
    """JSON lines of ``gedge score --json`` or ``gedge-score`` as one backend's scores (a frame is one input)."""
    scores = Scores.from_dict({k: np.array([r[k] for r in records], dtype=np.float32) for k in OUTPUT_NAMES})
    return BackendScores(scores, scores, name)


def compare(reference: list[dict], candidate: list[dict], threshold: float, precision: str) -> ParityReport:
    """The comparator's verdict on gedge-score's frames against gedge score's (FP32 limits with the relative L2
    error the printed floats allow; FP16 and INT8 engines by their own precision's limits)."""
    if [r["path"] for r in reference] != [c["path"] for c in candidate]:
        raise AssertionError("gedge-score and gedge score list different frames")
    limits = limits_for("fp32", max_rel_l2=FP32_MAX_REL_L2) if precision == "fp32" else limits_for(precision)
    facts = ImageSetFacts(threshold, names=[Path(r["path"]).name for r in reference], description="frames")
    return compare_scores(frame_scores(reference, "gedge score (torch)"), frame_scores(candidate, "gedge-score"),
                          facts, limits)


def step_firmware(data: dict[str, Any], folder: Path) -> str:
    """gpu_check's step; ``data`` is the check's shared facts (model, data, engines)."""
    engines: dict[str, Path] = data.get("engines") or {}
    if not engines:
        raise FirmwareSkip("no engines were built (see the TensorRT step)")
    if MANIFEST_VERSION != FIRMWARE_MANIFEST_VERSION:
        raise FirmwareSkip(f"gedge writes manifests of format {MANIFEST_VERSION}; the firmware reads "
                           f"{FIRMWARE_MANIFEST_VERSION}")
    fp32 = artifacts.open(engines["fp32"], ("engine",))  # its manifest read and its bytes checked
    gedge_score = build_gedge_score()
    checkpoint = load_checkpoint(data["model"])
    frames = write_frames(checkpoint, Path(data["data"]), folder / "frames")
    unscaled = dataclasses.replace(checkpoint, preprocess=dataclasses.replace(checkpoint.preprocess, scale=1.0))
    save_checkpoint(unscaled, folder / "model.frames.pt")
    cli = [sys.executable, "-c", "from gedge.cli.app import main; main()"]
    reference = json_lines([*cli, "score", str(folder / "model.frames.pt"), *map(str, frames), "--json"],
                           "gedge score")
    threshold = fp32.threshold
    lines = []
    for precision, engine in engines.items():
        run = [str(gedge_score), "--prescaled", str(engine), *map(str, frames)]
        candidate = json_lines(run, f"gedge-score {precision}")
        report = compare(reference, candidate, threshold, precision)
        worst = max(report.outputs, key=lambda row: row.rel_l2)
        lines.append(f"{precision} rel L2 {worst.rel_l2:.1e} ({worst.name}), {report.decisions.n_disagree} decisions "
                     f"differ: {'PASS' if report.passed else 'FAIL'}")
        if precision != "fp32":
            continue
        if not report.passed:
            raise AssertionError(f"FP32 engine through gedge-score vs torch: {'; '.join(report.failures)}")
        graphs = json_lines([run[0], "--cuda-graphs", *run[1:]], "gedge-score --cuda-graphs")
        if graphs != candidate:
            raise AssertionError("gedge-score gives other numbers with --cuda-graphs")
    return f"{len(frames)} frames vs gedge score (torch): " + "; ".join(lines) + "; FP32 with CUDA graphs identical"
