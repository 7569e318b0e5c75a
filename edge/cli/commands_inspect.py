"""What `gedge inspect` and `gedge data synth-strips` do: call the library, render the result."""

from __future__ import annotations

from pathlib import Path

from gedge.cli.render import console, fmt, key_value_table, print_json, progress_bar, warning_line
from gedge.core.errors import ConfigError
from rich.table import Table

MAX_ROWS = 40  # image rows in the table; the summary covers all


def run_synth_strips(out: Path, count: int, height: int, length: int, seed: int, max_defects: int,
                     json_out: bool) -> None:
    from gedge.data.strips import TRUTH_NAME, write_strips

    truth = write_strips(out, count, height, length, seed, max_defects)
    planted = sum(len(s["defects"]) for s in truth["strips"])
    clean = sum(not s["defects"] for s in truth["strips"])
    summary = {"folder": str(out), "strips": count, "size": f"{length}x{height}", "defects": planted,
               "clean strips": clean, "ground truth": str(out / TRUTH_NAME)}
    if json_out:
        print_json(summary)
    else:
        console.print(key_value_table(f"Synthetic line-scan strips written to {out}", summary))


def run_inspect(model: Path, inputs: list[Path], backend_kind: str | None, device: str, overlap: float,
                batch_size: int, threshold: float | None, overlays: Path | None, truth: Path | None,
                all_tiles: bool, threads: int, workers: int | None, slots: int, convert: bool,
                json_out: bool, performance: str = "latency", streams: int = 0) -> None:
    from gedge.cli.commands import _expand_inputs
    from gedge.inspection import InspectOptions, Inspector
    from gedge.runtime.registry import model_info, open_backend

    options = InspectOptions(overlap=overlap, batch_size=batch_size, threshold=threshold, overlays=overlays,
                             convert=convert, all_tiles=all_tiles, workers=workers, slots=slots)
    files = _expand_inputs(inputs)
    ground_truth = None
    if truth is not None:
        from gedge.data.strips import read_truth

        ground_truth = read_truth(truth)
    info = model_info(model)
    if backend_kind is None:
        from gedge.cli.render import err_console
        from gedge.runtime.registry import auto_backend

        choice = auto_backend(model, info=info, measure_batch=batch_size, threads=threads)
        backend_kind = choice.kind
        if choice.reason != "the file's own backend":
            err_console.print(f"backend: {choice.kind} {choice.precision} ({choice.reason}; --backend to choose)")
    want_amap = overlays is not None and info.has_amap
    backend = open_backend(model, backend_kind, threads=threads, device=device, with_amap=want_amap,
                           slots=slots, info=info, performance=performance, streams=streams)
    stats = None
    if "checkpoint" in info.details:
        stats = info.details["checkpoint"].score_stats
    inspector = Inspector(backend, info, options, stats)
    reports, scored = [], []
    try:
        with progress_bar("inspecting", total=len(files), transient=json_out) as update:
            for report in inspector.run(files, update):
                reports.append(report)
                if json_out:
                    print_json(report.to_record())
                if report.ok and ground_truth is not None:
                    from gedge.data.strips import score_strip

                    planted = ground_truth.get(Path(report.path).name)
                    if planted is not None:
                        scored.append(score_strip(Path(report.path).name, planted,
                                                  [(b.x0, b.y0, b.x1, b.y1) for b in report.boxes],
                                                  report.anomalous))
    finally:
        backend.close()
    summary = inspector.summary
    recall = _truth_summary(scored)
    if json_out:
        print_json({"summary": {**summary.to_dict(), **({"ground_truth": recall} if recall else {})}})
        return
    for report in reports:
        if not report.ok:
            warning_line(f"skipped {report.error}")
    console.print(_image_table(reports, summary.threshold, ground_truth))
    if scored:
        console.print(_truth_table(scored))
    rows = {"model": f"{summary.model} ({info.precision})", "backend": summary.backend,
            "threshold": f"{summary.threshold:.3f} ({info.primary})",
            "tiles": f"{summary.tiles} (overlap {summary.overlap:g}, batch {summary.batch_size})",
            "images": summary.images, "rejected": summary.rejected, "accepted": summary.accepted,
            "errors (skipped)": summary.errors, "defect boxes": summary.boxes,
            "time": f"{summary.seconds:.2f} s ({summary.tiles_per_second:.0f} tiles/s)"}
    if recall:
        rows["planted defects found"] = f"{recall['found']} of {recall['planted']} (recall {fmt(recall['recall'])})"
        rows["false alarms"] = f"{recall['false_alarms']} boxes on {recall['strips']} strips"
    if overlays is not None:
        rows["overlays"] = str(overlays)
    console.print(key_value_table("Inspection summary", rows))


def _truth_summary(scored) -> dict | None:
    if not scored:
        return None
    planted = sum(s.planted for s in scored)
    found = sum(s.found for s in scored)
    return {"strips": len(scored), "planted": planted, "found": found,
            "recall": found / planted if planted else None,
            "false_alarms": sum(s.false_alarms for s in scored),
            "clean_strips_rejected": sum(1 for s in scored if not s.planted and s.rejected),
            "clean_strips": sum(1 for s in scored if not s.planted),
            "per_strip": [s.to_dict() for s in scored]}


def _image_table(reports, threshold: float, ground_truth) -> Table:
    table = Table(title=f"Inspection (threshold {threshold:.3f})", title_justify="left")
    for column in ("image", "size", "tiles", "score", "decision", "tiles over", "boxes (x0,y0-x1,y1)"):
        table.add_column(column, justify="left" if column in ("image", "boxes (x0,y0-x1,y1)") else "right")
    shown = reports if len(reports) <= MAX_ROWS else [r for r in reports if not r.ok or r.anomalous][:MAX_ROWS]
    for r in shown:
        if not r.ok:
            table.add_row(Path(r.path).name, "-", "-", "-", "[yellow]ERROR[/]", "-", r.error or "")
            continue
        decision = "[red]REJECT[/]" if r.anomalous else "[green]accept[/]"
        boxes = "; ".join(f"{b.x0},{b.y0}-{b.x1},{b.y1} ({b.score:.1f})" for b in r.boxes[:3])
        if len(r.boxes) > 3:
            boxes += f"; +{len(r.boxes) - 3}"
        table.add_row(Path(r.path).name, f"{r.width}x{r.height}", str(r.tiles), fmt(r.score, 2), decision,
                      str(len(r.tiles_over)), boxes)
    if len(shown) < len(reports):
        table.caption = f"{len(reports) - len(shown)} accepted images not shown (--json lists every image)"
    return table


def _truth_table(scored) -> Table:
    table = Table(title="Against the ground truth (strips.json)", title_justify="left")
    for column in ("strip", "planted", "found", "recall", "false alarms", "decision"):
        table.add_column(column, justify="left" if column == "strip" else "right")
    for s in scored:
        table.add_row(s.file, str(s.planted), str(s.found), fmt(s.recall, 2), str(s.false_alarms),
                      "REJECT" if s.rejected else "accept")
    return table


def check_backend(kind: str | None) -> str | None:
    if kind is not None and kind not in ("torch", "torch-cuda", "onnxruntime", "openvino", "tensorrt"):
        raise ConfigError(f"--backend must be torch, torch-cuda, onnxruntime, openvino or tensorrt, got {kind!r}")
    return kind
