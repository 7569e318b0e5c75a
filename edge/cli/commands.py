"""What each core CLI command does: call the library, render the result. Kept apart from argument parsing."""

from __future__ import annotations

from pathlib import Path

from gedge.cli.render import console, evaluation_table, fmt, key_value_table, print_json, progress_bar
from gedge.core.errors import ConfigError, DataError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import SCORE_NAMES
from gedge.data.datasets import open_dataset
from gedge.data.images import expand_inputs
from gedge.data.tiles import load_prepared
from rich.table import Table


def run_synth_wood(out: Path, paper_size: bool, seed: int, size: int, json_out: bool) -> None:
    from gedge.data.synth import SynthWoodConfig, write_synthetic_wood

    config = SynthWoodConfig.paper_size(seed=seed, size=size) if paper_size else SynthWoodConfig(seed=seed, size=size)
    with progress_bar("synthetic wood") as update:
        summary = write_synthetic_wood(out, config, progress=update)
    if json_out:
        print_json(summary)
    else:
        console.print(key_value_table(f"Synthetic wood written to {out}", {
            "seed": seed, "size": f"{size}x{size}", **{k: v for k, v in summary.counts.items()}}))


def run_train(args: dict) -> None:
    from gedge.reference.checkpoint import save_checkpoint
    from gedge.reference.model import ModelConfig
    from gedge.reference.train import TrainCallbacks, TrainConfig, train

    model_config = ModelConfig(isize=args["isize"], nc=args["channels"], nz=args["nz"], ngf=args["ngf"],
                               ndf=args["ndf"], extralayers=args["extralayers"])
    pre = Preprocess(mode=args["mode"], isize=args["isize"], channels=args["channels"], scale=args["scale"],
                     stride=args["stride"])
    config = TrainConfig(preset=args["preset"], steps=args["steps"], batch_size=args["batch_size"],
                         val_every=args["val_every"], val_fraction=args["val_fraction"], seed=args["seed"],
                         contamination=args["contamination"], device=args["device"], lr=args["lr"],
                         resume=args["resume"])
    dataset = open_dataset(args["data"])
    out: Path = args["out"]
    history_lines: list[str] = []
    with progress_bar("training", total=config.steps) as update:
        def on_step(step: int, losses: dict[str, float]) -> None:
            if step % 5 == 0 or step == config.steps:
                update(step, info=" ".join(f"{k} {v:.3f}" for k, v in losses.items()))

        def on_validate(result) -> None:
            history_lines.append(result)

        result = train(dataset, model_config, pre, config, out,
                       TrainCallbacks(on_step=on_step, on_validate=on_validate))
    save_checkpoint(result.checkpoint, out)
    cal = result.checkpoint.decision
    summary = {"checkpoint": str(out), "best_step": result.best_step, "primary": cal.primary,
               "threshold": cal.threshold, "seconds": round(result.seconds, 1),
               "proxy_auroc": result.checkpoint.facts["proxy_auroc"]}
    if args["json_out"]:
        print_json({**summary, "history": [h for h in result.checkpoint.facts["history"]]})
        return
    table = Table(title="Validation (held-out normals vs proxy anomalies; the test set is not used)",
                  title_justify="left")
    for column in ("step", *SCORE_NAMES, "recon L1"):
        table.add_column(column, justify="right")
    for h in history_lines:
        marker = " *" if h.step == result.best_step else ""
        table.add_row(f"{h.step}{marker}", *(fmt(h.proxy_auroc[s]) for s in SCORE_NAMES),
                      fmt(h.recon_l1, 4))
    console.print(table)
    console.print(f"wrote {out}: best step {result.best_step}, primary score {cal.primary}, "
                  f"threshold {cal.threshold:.3f} ({cal.threshold_rule}), {result.seconds:.0f} s")


def run_evaluate(checkpoint_path: Path, data: Path, batch_size: int, json_out: bool) -> None:
    from gedge.reference.checkpoint import load_checkpoint
    from gedge.reference.evaluate import EvaluationOptions, evaluate_backend
    from gedge.runtime.torch_backend import TorchBackend

    checkpoint = load_checkpoint(checkpoint_path)
    dataset = open_dataset(data)
    if dataset.test is None:
        raise DataError("data set has no test/ folder to evaluate on", data)
    same_data = Path(checkpoint.facts.get("data", "")).resolve() == Path(data).resolve()
    exclude = checkpoint.facts.get("contaminated_with", []) if same_data else []
    backend = TorchBackend(checkpoint)
    with progress_bar("scoring") as update:
        report, _ = evaluate_backend(backend, dataset.test, checkpoint.preprocess, checkpoint.decision, str(data),
                                     EvaluationOptions(batch_size, update, tuple(exclude)))
    if json_out:
        print_json(report)
    else:
        console.print(evaluation_table(report))


def run_score(checkpoint_path: Path, inputs: list[Path], batch_size: int, json_out: bool) -> None:
    from gedge.data.tiles import score_images
    from gedge.reference.checkpoint import load_checkpoint
    from gedge.runtime.torch_backend import TorchBackend

    checkpoint = load_checkpoint(checkpoint_path)
    files = expand_inputs(inputs)
    images = load_prepared(files, checkpoint.preprocess)
    backend = TorchBackend(checkpoint)
    image_scores, _ = score_images(backend, images, checkpoint.preprocess, batch_size)
    threshold = checkpoint.decision.threshold
    records = []
    for i, path in enumerate(files):
        record = {"path": str(path), **{k: float(v[i]) for k, v in image_scores.as_dict().items()}}
        record["anomalous"] = bool(image_scores.score[i] >= threshold)
        records.append(record)
    if json_out:
        for record in records:
            print_json(record)
        return
    table = Table(title=f"Scores (primary {checkpoint.decision.primary}, threshold {threshold:.3f})",
                  title_justify="left")
    for column in ("image", *SCORE_NAMES, "score", "decision"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for r in records:
        decision = "[red]REJECT[/]" if r["anomalous"] else "[green]accept[/]"
        table.add_row(r["path"], *(fmt(r[k], 4) for k in SCORE_NAMES), fmt(r["score"], 2), decision)
    console.print(table)
    console.print(f"{sum(r['anomalous'] for r in records)} of {len(records)} images rejected")


def run_import(sources: list[Path], out: Path, data: Path | None, primary: str, json_out: bool) -> None:
    from gedge.reference.checkpoint import save_checkpoint
    from gedge.reference.decision_fit import refit_on_normals
    from gedge.reference.importers import detect_format, import_anomalib, import_ganomaly

    if not 1 <= len(sources) <= 2:
        raise ConfigError("give netG.pth and netD.pth (original GANomaly) or one anomalib .ckpt")
    kinds = [detect_format(s) for s in sources]
    if kinds == ["anomalib-ckpt"]:
        checkpoint = import_anomalib(sources[0])
    elif sorted(kinds) == ["ganomaly-netd", "ganomaly-netg"]:
        netg = sources[kinds.index("ganomaly-netg")]
        netd = sources[kinds.index("ganomaly-netd")]
        checkpoint = import_ganomaly(netg, netd)
    else:
        raise ConfigError(f"unsupported combination of inputs: {', '.join(kinds)} "
                          "(expected netG.pth + netD.pth, or one anomalib .ckpt)")
    if data is not None:
        dataset = open_dataset(data)
        checkpoint = refit_on_normals(checkpoint, load_prepared(dataset.train, checkpoint.preprocess), primary)
    save_checkpoint(checkpoint, out)
    summary = {"checkpoint": str(out), "imported_from": checkpoint.facts.get("imported_from"),
               **checkpoint.model.to_dict(), "primary": checkpoint.decision.primary,
               "threshold": checkpoint.decision.threshold, "calibrated": data is not None}
    if json_out:
        print_json(summary)
    else:
        console.print(key_value_table(f"Imported into {out}", summary))
