"""The `gedge` command line: the root command, its command table, and exit codes.

Each command group lives in its own module (``gedge.cli.<group>``) and is imported only when one of its
commands runs, so ``gedge inspect scorer.onnx`` on a device never imports torch. :data:`COMMANDS` is the
table of commands: name, module, the one line ``gedge --help`` shows, and the environment a command needs set before
its module is imported. It is one of the two places where gedge imports its own modules by name (the other is the
runtime registry's backends, :mod:`gedge.runtime.registry`); a test checks that there are no others.

Exit codes: 0 success; 1 a check failed (parity, a gate, a rejected graph); 2 bad input (a
missing or unreadable file, an invalid option, an artifact of another version); 3 a runtime failure (CUDA,
TensorRT, a backend that failed while running, a full disk); 130 interrupted. A run with several failed items
or stages exits with the highest of their codes (3 over 2 over 1).
"""

from __future__ import annotations

import os
import sys

import typer
from gedge import __version__
from gedge.cli.render import console, error_line
from gedge.core.atomic import OUT_OF_SPACE, WriteFailed
from gedge.core.errors import CheckFailed, GedgeError, RuntimeFailure
from gedge.core.optional import require
from typer.core import TyperGroup


class Entry:
    """One row of the command table."""

    def __init__(self, module: str, summary: str, attr: str | None = None, env: dict[str, str] | None = None) -> None:
        self.module = module
        self.summary = summary
        self.attr = attr  # None: the command of the module's app named like the entry; "*": the app is a group
        self.env = env or {}  # set (unless already set) before the module is imported


# OpenMP threads that sleep instead of spinning (torch eager is 1.5-1.8x slower on a busy machine with spinning);
# OpenMP reads the variable when torch is first imported, so it is set before a timing command's module is.
QUIET_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE"}


COMMANDS: dict[str, Entry] = {
    "data": Entry("gedge.cli.data", "Data sets: synthetic wood and metal, line-scan strips.", "*"),
    "train": Entry("gedge.cli.train", "Train GANomaly on normal images; keep the best checkpoint by validation."),
    "evaluate": Entry("gedge.cli.evaluate", "Image AUROC per score and per defect class, decisions at the threshold; "
                      "--report: an HTML report."),
    "threshold": Entry("gedge.cli.evaluate", "Refit the decision threshold on labelled images (escape or false-reject "
                       "rate)."),
    "score": Entry("gedge.cli.train", "Per-image scores and accept/reject decisions of a checkpoint."),
    "import": Entry("gedge.cli.train", "Convert an original GANomaly or anomalib checkpoint."),
    "export": Entry("gedge.cli.export", "Export the fused scorer to one ONNX graph with a sidecar."),
    "check": Entry("gedge.cli.build", "Check a graph with the ONNX checker and TensorRT's own parser."),
    "build": Entry("gedge.cli.build", "Build a TensorRT engine and its manifest from a graph."),
    "calibrate": Entry("gedge.cli.calibrate", "INT8 graphs and a calibration cache, behind an accuracy gate."),
    "parity": Entry("gedge.cli.parity", "Accuracy parity of a deployed model against the PyTorch reference."),
    "inspect": Entry("gedge.cli.inspection", "Inspect images and line-scan strips: tiles, decisions, boxes."),
    "bench": Entry("gedge.cli.bench", "Latency, throughput and memory of every backend.", env=QUIET_OPENMP),
    "bench-cpu": Entry("gedge.cli.bench_cpu", "CPU speed: torch eager against ONNX Runtime and OpenVINO.",
                       env=QUIET_OPENMP),
    "gpu-check": Entry("gedge.cli.gpu_check", "On a GPU machine: CUDA, the loop, TensorRT engines, parity and speed.",
                       env=QUIET_OPENMP),
    "serve": Entry("gedge.cli.serve", "Serve a scorer with Triton Inference Server (HTTP, gRPC, metrics)."),
    "triton": Entry("gedge.cli.triton", "Triton model repositories from engines, graphs and IRs.", "*"),
    "study": Entry("gedge.cli.study", "Studies over many runs: contamination, quality across materials.", "*"),
    "demo": Entry("gedge.cli.demo", "The whole pipeline on synthetic wood, on a CPU."),
}


class LazyCommands(TyperGroup):
    """The root group: commands are listed from :data:`COMMANDS` and imported when used."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, name: str):
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        for key, value in entry.env.items():
            os.environ.setdefault(key, value)
        try:
            module = require(entry.module, f"`gedge {name}`")
        except GedgeError as exc:  # an extra this command needs is not installed here
            return _unavailable(name, entry, exc.problem)
        command = typer.main.get_command(module.app)
        if entry.attr == "*":
            command.name = name
            return command
        if hasattr(command, "commands"):  # a module with several commands
            return command.commands[name]
        return command


def _unavailable(name: str, entry: Entry, why: str):
    """A stand-in command that says why ``name`` cannot run here (an extra is not installed)."""
    stand_in = typer.Typer(add_completion=False)

    @stand_in.command(name, help=f"{entry.summary} Not available here: {why}.",
                      context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def explain() -> None:
        raise GedgeError(f"`gedge {name}` is not available here: {why}")

    return typer.main.get_command(stand_in)


app = typer.Typer(
    cls=LazyCommands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="GANomaly from training to TensorRT on the inspection line, with accuracy parity at every step.\n\n"
         "Example: [bold]gedge data synth-wood wood && gedge train wood -o model.pt && "
         "gedge evaluate model.pt wood[/]",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"gedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, metavar="",
                                       help="Print the version and exit.")) -> None:
    pass


def os_error_text(exc: OSError) -> str:
    """One line for an ``OSError`` that reached the top: the file first, like gedge's own errors."""
    if isinstance(exc, WriteFailed) or exc.filename is None or not exc.strerror:
        return str(exc)
    return f"{exc.filename}: {exc.strerror}"


def main() -> None:
    """The `gedge` entry point: runs the command and maps gedge's errors to exit codes (see the module doc)."""
    try:
        app()
    except GedgeError as exc:
        error_line(str(exc))
        sys.exit(2)
    except CheckFailed as exc:
        error_line(str(exc))
        sys.exit(1)
    except RuntimeFailure as exc:
        error_line(str(exc))
        sys.exit(3)
    except OSError as exc:  # the file system refused: a full disk (3), or a folder gedge may not write to (2)
        error_line(os_error_text(exc))
        sys.exit(3 if exc.errno in OUT_OF_SPACE else 2)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
