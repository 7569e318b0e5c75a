"""What `gedge calibrate` and `gedge bench-cpu` do: call the library, render the result.

Exit codes: 2 for bad input (a GedgeError, handled by the CLI), 1 when an INT8 graph fails the accuracy gate.
"""

from __future__ import annotations

from gedge.cli.render import console, key_value_table, print_json, progress_bar, warning_line


def calibrate_summary(result) -> dict:
    from gedge.calibrate.gate import gate_summary

    cal = result.calibration
    return {
        "passed": result.passed,
        "calibration_set": {"path": str(result.set_path), "sha256": cal.sha256, "patches": len(cal),
                            "shape": list(cal.shape), "sources": len(cal.sources), "origin": cal.origin,
                            "excluded": cal.excluded, "seed": cal.seed, "method": cal.method},
        "ranges": {"method": result.ranges.method, "tensors": len(result.ranges.tensors),
                   "seconds": result.ranges.seconds},
        "gate_data": result.gate_description,
        "cache": str(result.cache_path) if result.cache_path else None,
        "graphs": {f.target: {"path": str(f.path), "written": f.written, "passed": f.passed, "nodes": f.nodes,
                              "quantized": f.quantized, "float_convolutions": f.float_convolutions,
                              "tensorrt_parse": f.tensorrt_parse, "gate": gate_summary(f.report)}
                   for f in result.flavours},
        "warnings": result.warnings,
        "notes": result.notes,
        "seconds": result.seconds,
    }


FLAVOUR_TITLES = {"tensorrt": "TensorRT flavour (int8 Q/DQ)", "cpu": "CPU flavour (uint8 activations, Conv only)"}


def run_calibrate(params: dict) -> None:
    from gedge.calibrate.pipeline import CalibrateOptions, calibrate, calibration_sources, open_inputs
    from gedge.cli.render_parity import parity_table

    json_out = params["json_out"]
    options = CalibrateOptions(
        checkpoint=params["checkpoint"], graph=params["onnx"], data=params["data"], target=params["target"],
        method=params["method"], percentile=params["percentile"], n_patches=params["patches"], seed=params["seed"],
        strict=params["strict"], out_dir=params["out_dir"], trt_version=params["trt_version"],
        quantize_image_convs=params["quantize_image_convs"], max_auroc_drop=params["max_auroc_drop"],
        min_agreement=params["min_agreement"], threads=params["threads"])

    if options.target == "openvino":
        run_calibrate_openvino(options, json_out)
        return
    checkpoint, *_ = open_inputs(options)  # bad input fails here, as one line, before any progress is drawn
    calibration_sources(checkpoint, options.data)
    with progress_bar("calibrate") as update:
        result = calibrate(options, lambda stage, done, total: update(done, total, info=stage))
    for warning in result.warnings:
        warning_line(warning)
    if json_out:
        print_json(calibrate_summary(result))
    else:
        cal = result.calibration
        rows = {"calibration set": f"{result.set_path} ({len(cal)} patches {cal.shape[1]}x{cal.shape[2]}, sha256 "
                                   f"{cal.sha256[:16]}...)",
                "sources": f"{len(cal.sources)} normal images: {cal.origin}",
                "left out": ", ".join(f"{n} {why}" for why, n in cal.excluded.items()) or "-",
                "ranges": f"{result.ranges.method}, {len(result.ranges.tensors)} tensors",
                "cache": str(result.cache_path) if result.cache_path else "-",
                "gate data": result.gate_description}
        for f in result.flavours:
            state = "written" if f.written else "NOT written: --strict"
            rows[f.target] = (f"{f.path} ({state}): {f.nodes} nodes, quantized {f.quantized}"
                              + (f"; {f.tensorrt_parse}" if f.tensorrt_parse else ""))
        console.print(key_value_table(f"INT8 calibration of {options.checkpoint}", rows))
        for f in result.flavours:
            console.print(parity_table(f.report, title=f"INT8 gate, {FLAVOUR_TITLES[f.target]}: {f.path.name}"))
        for note in result.notes:
            console.print(f"note: {note}")
    for f in result.flavours:
        if not f.passed:
            what = "written anyway; --strict refuses it" if f.written else "not written (--strict)"
            warning_line(f"the {f.target} INT8 graph FAILED the accuracy gate ({'; '.join(f.report.failures)}); "
                         f"{what}")
    if not result.passed:
        raise SystemExit(1)


def openvino_summary(result) -> dict:
    from gedge.calibrate.gate import gate_summary

    return {"passed": result.passed, "path": str(result.path), "written": result.written,
            "calibration_set": {"path": str(result.set_path), "sha256": result.set_sha256},
            "gate_data": result.gate_description, "gate": gate_summary(result.report),
            "quantization": result.quantization, "float_residuals": result.float_residuals or "ok",
            "notes": result.notes, "seconds": result.seconds}


def run_calibrate_openvino(options, json_out: bool) -> None:
    """`gedge calibrate --target openvino`: NNCF INT8 IR from the same calibration set, and the same gate."""
    from gedge.calibrate.nncf_int8 import calibrate_openvino
    from gedge.cli.render_parity import parity_table

    with progress_bar("calibrate (NNCF)") as update:
        result = calibrate_openvino(options, lambda stage, done, total: update(done, total, info=stage))
    if json_out:
        print_json(openvino_summary(result))
    else:
        q = result.quantization
        rows = {"calibration set": f"{result.set_path} (sha256 {result.set_sha256[:16]}...)",
                "IR": f"{result.path} ({'written' if result.written else 'NOT written: --strict'})",
                "quantized": f"{q.get('quantized_nodes')} ({q.get('tool')}, OpenVINO "
                             f"{str(q.get('openvino_version', '?')).split('-')[0]})",
                "float": "camera conversion, residuals, reductions, image and latent convolutions "
                         f"({', '.join(q.get('float_convolutions', []))})",
                "residuals in float (checked on the IR)": "yes" if not result.float_residuals
                else "NO: " + ", ".join(result.float_residuals),
                "gate data": result.gate_description}
        console.print(key_value_table(f"OpenVINO INT8 (NNCF) of {options.checkpoint}", rows))
        console.print(parity_table(result.report, title=f"INT8 gate, OpenVINO NNCF IR: {result.path.name}"))
        for note in result.notes:
            console.print(f"note: {note}")
    if not result.passed:
        what = "written anyway; --strict refuses it" if result.written else "not written (--strict)"
        warning_line(f"the OpenVINO INT8 IR FAILED the accuracy gate ({'; '.join(result.report.failures)}); {what}")
        raise SystemExit(1)
