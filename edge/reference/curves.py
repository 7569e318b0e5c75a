"""The training curve: validation AUROC per score and the reconstruction error at every validation step, written
next to the checkpoint as JSON (``<checkpoint>.curve.json``) and as a PNG chart (``<checkpoint>.curve.png``).

The chart is drawn with matplotlib in gedge's plot style (:mod:`gedge.core.plots`, shared with the evaluation
report): the upper panel holds one line per candidate score (proxy AUROC on the validation set) with the best
step marked, the lower panel the validation normals' mean reconstruction error |x - G(x)|, both over the training
steps. matplotlib comes with the ``report`` extra; where it is not installed the JSON is still written and the
chart is left out, with a note saying how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gedge.core.atomic import write_bytes, write_json
from gedge.core.optional import install_hint
from gedge.core.plots import THRESHOLD, can_plot, png_bytes, pyplot


def curve_paths(checkpoint: Path) -> tuple[Path, Path]:
    return checkpoint.with_name(checkpoint.name + ".curve.json"), checkpoint.with_name(checkpoint.name + ".curve.png")


def curve_figure(history: list[dict[str, Any]], best_step: int) -> Any:
    """The two panels as a matplotlib figure; ``history`` holds one dict per validation (step, proxy_auroc per
    score, recon_l1)."""
    plt = pyplot("the training curve")
    figure, (upper, lower) = plt.subplots(2, 1, figsize=(8.0, 5.6), sharex=True, height_ratios=(2.6, 1.0))
    steps = [int(h["step"]) for h in history]
    for name in (history[0]["proxy_auroc"] if history else {}):
        upper.plot(steps, [float(h["proxy_auroc"][name]) for h in history], marker="o", markersize=3, linewidth=1.4,
                   label=name)
    upper.set_ylabel("validation AUROC\n(normals vs proxy anomalies)")
    upper.set_title("Training curve")
    lower.plot(steps, [float(h["recon_l1"]) for h in history], color=THRESHOLD, marker="o", markersize=3,
               linewidth=1.4)
    lower.set_ylabel("reconstruction error\n|x - G(x)| of normals")
    lower.set_xlabel("training step")
    if best_step in steps:
        for axes in (upper, lower):
            axes.axvline(best_step, color="#b00000", linestyle="--", linewidth=1.0)
        upper.annotate(f"best step {best_step}", (best_step, 1.0), xycoords=("data", "axes fraction"),
                       xytext=(4, -12), textcoords="offset points", color="#b00000", fontsize=8)
    if history:
        upper.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.align_ylabels((upper, lower))
    return figure


def write_training_curve(checkpoint: Path, history: list[dict[str, Any]], best_step: int,
                         notes: list[str]) -> tuple[Path, Path | None]:
    """Write the JSON and, where matplotlib is installed, the chart (both atomic); the chart's path or None."""
    json_path, png_path = curve_paths(Path(checkpoint))
    drawn = can_plot()
    if not drawn:
        notes = [*notes, f"training curve chart not drawn: matplotlib is not installed ({install_hint('matplotlib')})"]
    write_json(json_path, {"checkpoint": Path(checkpoint).name, "best_step": best_step, "notes": notes,
                           "validations": history})
    if not drawn:
        return json_path, None
    write_bytes(png_path, png_bytes(curve_figure(history, best_step)))
    return json_path, png_path
