"""The command-line options several commands share, declared once (Typer ``Annotated`` aliases) with one help text
each: a command names the alias and gives the default (``json_out: Json = False``).

Flags carry an empty metavar: a flag takes no value, so the help shows none (not ``<bool>``).
"""

from __future__ import annotations

from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", metavar="", help="Machine-readable output: JSON (JSON lines where the "
                                                               "command reports as it goes).")]
Force = Annotated[bool, typer.Option("--force", metavar="", help="Use an artifact whose recorded verdict (INT8 "
                                                                 "accuracy gate, engine parity) failed; what is made "
                                                                 "from it records the override.")]
Threads = Annotated[int, typer.Option(help="CPU threads of torch, ONNX Runtime and OpenVINO (0: their default).")]
BatchSize = Annotated[int, typer.Option(help="Network inputs per inference batch.")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same result.")]
Batches = Annotated[list[int] | None, typer.Option("--batch", "-b", help="Batch size (repeatable; default 1 and 16).")]
Performance = Annotated[str, typer.Option(help="OpenVINO performance hint: latency (one stream, all threads) or "
                                               "throughput (a batch split across streams).")]
Streams = Annotated[int, typer.Option(help="OpenVINO streams with --performance throughput (0: OpenVINO's choice).")]
ModelName = Annotated[str | None, typer.Option(help="The served model on the server (default: scorer).")]
Module = Annotated[str | None, typer.Option(help="TensorRT module: tensorrt or tensorrt_rtx (default: the first "
                                                 "installed of the two).")]
ComputeCapability = Annotated[list[str] | None, typer.Option("--compute-capability", "-c",
                                                      help="TensorRT-RTX ahead-of-time target, e.g. SM86 (repeatable; "
                                                           "default: its portable set, SM80, SM86, SM89, SM120 and "
                                                           "later).")]
