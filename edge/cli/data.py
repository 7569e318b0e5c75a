"""`gedge` commands: data sets: the built-in synthetic materials and line-scan strips."""

from __future__ import annotations

from pathlib import Path

import typer
from gedge.cli.options import Json, Seed
from gedge.cli.render import console, key_value_table, print_json, progress_bar
from gedge.data.strip_truth import TRUTH_NAME
from gedge.data.strips import write_strips
from gedge.data.synth import SynthConfig, write_synthetic

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Data sets: the built-in synthetic materials and line-scan strips.")


@app.command("synth-wood")
def synth_wood(
    out: Path = typer.Argument(..., help="Output folder (MVTec AD layout)."),
    paper_size: bool = typer.Option(False, "--paper-size", metavar="",
                                    help="The paper's 3,075 training and 740 test images."),
    seed: Seed = 0,
    size: int = typer.Option(256, help="Image side in pixels."),
    json_out: Json = False,
) -> None:
    """Write the procedural wood data set (RGB boards and five defect classes with masks).

    Example: [bold]gedge data synth-wood wood --seed 1[/]
    """
    write_and_render(out, (SynthConfig.paper_size if paper_size else SynthConfig.default)(size, seed, "wood"),
                     json_out)


@app.command("synth-metal")
def synth_metal(
    out: Path = typer.Argument(..., help="Output folder (MVTec AD layout)."),
    seed: Seed = 0,
    size: int = typer.Option(256, help="Nominal image size in pixels (images vary from about half to twice it)."),
    json_out: Json = False,
) -> None:
    """Write the procedural brushed-metal data set (grayscale, mixed image sizes; pits, scratch, crack, uneven
    and smear defects with masks): a second material, different from wood.

    Example: [bold]gedge data synth-metal metal --seed 1 && gedge train metal -o metal.pt[/]
    """
    write_and_render(out, SynthConfig.default(size, seed, "metal"), json_out)


def write_and_render(out: Path, config: SynthConfig, json_out: bool) -> None:
    with progress_bar(f"synthetic {config.material}") as update:
        summary = write_synthetic(out, config, progress=update)
    if json_out:
        print_json(summary)
    else:
        console.print(key_value_table(f"Synthetic {config.material} written to {out}", {
            "seed": config.seed, "size": config.size, **summary.counts}))


@app.command("synth-strips")
def synth_strips(
    out: Path = typer.Argument(..., help="Output folder: strip PNGs and strips.json (the planted defect boxes)."),
    count: int = typer.Option(8, help="Number of strips (every 4th has no defects, for false alarms)."),
    height: int = typer.Option(256, help="Strip height in pixels (one board section is height x height)."),
    length: int = typer.Option(2048, help="Strip length in pixels."),
    max_defects: int = typer.Option(3, help="Defects per strip: 1 to this many."),
    seed: Seed = 0,
    json_out: Json = False,
) -> None:
    """Write synthetic line-scan strips (seamless wood, planted defects) with their ground truth.

    Example: [bold]gedge data synth-strips strips --count 8 --length 2048 && gedge inspect model.pt strips
    --truth strips/strips.json[/]
    """
    truth = write_strips(out, count, height, length, seed, max_defects)
    summary = {"folder": str(out), "strips": count, "size": f"{length}x{height}",
               "defects": sum(len(s["defects"]) for s in truth["strips"]),
               "clean strips": sum(not s["defects"] for s in truth["strips"]), "ground truth": str(out / TRUTH_NAME)}
    if json_out:
        print_json(summary)
    else:
        console.print(key_value_table(f"Synthetic line-scan strips written to {out}", summary))
