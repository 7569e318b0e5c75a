"""Triton Inference Server model repositories from gedge's artifacts (``gedge triton export``).

Each artifact becomes one Triton model, ``REPO/<name>/config.pbtxt`` with the artifact under a version folder:

* a TensorRT engine: ``platform: "tensorrt_plan"``, the engine as ``<v>/model.plan``, ``max_batch_size`` from
  the engine's optimisation profile, preferred batch sizes from its opt and max shapes, on ``KIND_GPU``;
* an ONNX graph: ``platform: "onnxruntime_onnx"``, ``<v>/model.onnx``, on ``KIND_CPU`` or ``KIND_GPU`` (where
  TensorRT can optionally accelerate onnxruntime: ``gpu_execution_accelerator: tensorrt``);
* an OpenVINO IR: ``backend: "openvino"``, ``<v>/model.xml`` and ``<v>/model.bin``, on ``KIND_CPU``.

Every config takes its facts from the artifact's own (metadata, sidecar, manifest; hashes checked first):
the input ``pixels`` (uint8, ``[H, W, C]``: camera bytes, normalised inside the graph), every score output
(``[1]`` per image: the artifact's ``[N]`` reshaped), ``dynamic_batching``, ``instance_group``, a warm-up with a
zero batch, and ``parameters`` holding the threshold, the primary score, the score statistics, the artifact's
sha256 and the whole fact set a gedge client reads (``gedge.facts``). The sidecar or manifest is copied next
to the model. A new export of the same model adds a version folder; Triton serves the newest version by
default (``version_policy`` latest 1), which is the one the config's parameters describe.

The config text is written here (no dependency), then parsed with Triton's own ``ModelConfig`` protobuf
(``tritonclient.grpc.model_config_pb2``) where tritonclient is installed, so that a field Triton does not
know fails the export instead of the server's start.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gedge.core.artifacts import Artifact
from gedge.core.artifacts.served import open_deployable, served_facts
from gedge.core.atomic import write_with
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.optional import available, require
from google.protobuf import text_encoding, text_format

PLATFORMS = {"engine": ("platform", "tensorrt_plan", "model.plan"),
             "graph": ("platform", "onnxruntime_onnx", "model.onnx"),
             "ir": ("backend", "openvino", "model.xml")}


DEFAULT_MAX_BATCH = 64  # an ONNX graph or IR takes any batch: Triton's dynamic batcher forms up to this many


DEVICES = ("auto", "cpu", "gpu")


class Enum(str):
    """A protobuf enum value: written bare (``KIND_GPU``), not quoted."""


@dataclass(frozen=True)
class TritonExportOptions:
    name: str | None = None  # the model's name (one artifact); default: the file name without suffix, dots -> _
    version: int | None = None  # default: the next free version of that model
    max_batch: int | None = None  # default: an engine's profile max, else DEFAULT_MAX_BATCH
    preferred: tuple[int, ...] | None = None  # preferred batch sizes (default: an engine's opt and max)
    queue_delay_us: int = 500  # how long the dynamic batcher waits to fill a batch
    instances: int = 1  # model instances per device
    device: str = "auto"  # auto: an engine on the GPU, a graph or IR on the CPU
    tensorrt_accelerator: bool = False  # ONNX graph on a GPU: let TensorRT accelerate onnxruntime
    warmup: bool = True
    force: bool = False  # write an artifact whose recorded verdict (INT8 gate, engine parity) failed

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.instances < 1:
            raise ConfigError(f"instances must be at least 1, got {self.instances}")
        if self.queue_delay_us < 0:
            raise ConfigError(f"queue delay must be 0 or more microseconds, got {self.queue_delay_us}")
        if self.max_batch is not None and self.max_batch < 1:
            raise ConfigError(f"max batch must be at least 1, got {self.max_batch}")
        if self.version is not None and self.version < 1:
            raise ConfigError(f"version must be 1 or more, got {self.version}")


@dataclass
class TritonModel:
    """One model written into a repository."""

    name: str
    version: int
    folder: str
    config: str
    platform: str
    artifact: str
    sha256: str
    max_batch_size: int
    preferred_batch_sizes: list[int]
    device: str
    instances: int
    validated: bool  # parsed with Triton's ModelConfig protobuf
    files: list[str] = field(default_factory=list)
    verification: str = ""  # the artifact's recorded hashes and verdicts, as checked when it was read
    forced: list[str] = field(default_factory=list)  # recorded verdicts overridden with --force

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_name(path: str | Path) -> str:
    """The default Triton model name of an artifact: ``scorer.fp16.engine`` -> ``scorer_fp16``."""
    stem = Path(path).name.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "scorer"


def export_repository(models: list[Path], repo: Path, options: TritonExportOptions) -> list[TritonModel]:
    """Write every artifact into the repository ``repo`` (created if needed); one model each."""
    if not models:
        raise ConfigError("give at least one artifact (.onnx, .xml or .engine)")
    if options.name and len(models) > 1:
        raise ConfigError("--name names one model; several artifacts get their file names")
    names = [options.name or model_name(m) for m in models]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ConfigError(f"two artifacts would both be model {doubled[0]!r}; export them one by one with --name")
    # Every artifact verified (hashes; verdicts enforced unless forced) before anything is written.
    opened = [open_deployable(m, options.force) for m in models]
    return [write_model(repo, name, artifact, options) for name, artifact in zip(names, opened)]


def resolve_device(artifact: Artifact, options: TritonExportOptions) -> str:
    device = options.device
    if device == "auto":
        device = "gpu" if artifact.kind == "engine" else "cpu"
    if artifact.kind == "engine" and device != "gpu":
        raise ConfigError(f"{artifact.name}: a TensorRT engine runs on the GPU it was built for (KIND_GPU)")
    if artifact.kind == "ir" and device != "cpu":
        raise ConfigError(f"{artifact.name}: gedge's OpenVINO IR runs on the CPU (KIND_CPU)")
    if options.tensorrt_accelerator and (artifact.kind != "graph" or device != "gpu"):
        raise ConfigError("--tensorrt-accelerator applies to an ONNX graph on the GPU (--device gpu)")
    if options.tensorrt_accelerator and artifact.precision == "int8":
        raise ConfigError(f"{artifact.name}: an INT8 graph runs where its accuracy gate ran (onnxruntime); "
                          "build a TensorRT engine with `gedge build` for TensorRT INT8")
    return device


def batching(artifact: Artifact, options: TritonExportOptions) -> tuple[int, list[int]]:
    """(max_batch_size, preferred batch sizes) from the options and the artifact's profile."""
    limit = artifact.max_batch
    max_batch = options.max_batch or limit or DEFAULT_MAX_BATCH
    if limit is not None and max_batch > limit:
        raise ConfigError(f"{artifact.name}: max batch {max_batch} is over the engine profile's {limit}")
    if options.preferred is not None:
        preferred = sorted(set(options.preferred))
    else:
        preferred = sorted({b for b in (artifact.opt_batch, limit) if b and b <= max_batch})
    bad = [b for b in preferred if not 1 <= b <= max_batch]
    if bad:
        raise ConfigError(f"preferred batch size {bad[0]} is not between 1 and the max batch {max_batch}")
    return max_batch, preferred


def model_config(name: str, artifact: Artifact, options: TritonExportOptions) -> tuple[dict[str, Any], str]:
    """The Triton model config of an artifact, as nested values for :func:`to_pbtxt`, and its device."""
    if artifact.model_facts().input_kind != "uint8-nhwc":
        raise ConfigError(f"{artifact.name}: a served scorer takes camera bytes (uint8 NHWC 'pixels'); export "
                          "the graph with --input uint8-nhwc")
    device = resolve_device(artifact, options)
    max_batch, preferred = batching(artifact, options)
    key, value, _ = PLATFORMS[artifact.kind]
    spec, input_name = artifact.input_spec, artifact.model_facts().input_name
    image = [spec.size, spec.size, spec.channels]
    outputs = [{"name": out, "data_type": Enum("TYPE_FP32"),
                "dims": [spec.size, spec.size] if out == "amap" else [1],
                **({} if out == "amap" else {"reshape": {"shape": []}})} for out in artifact.model_facts().outputs]
    batcher: dict[str, Any] = {"max_queue_delay_microseconds": options.queue_delay_us}
    if preferred:
        batcher = {"preferred_batch_size": preferred, **batcher}
    config: dict[str, Any] = {
        "name": name, key: value, "max_batch_size": max_batch,
        "input": [{"name": input_name, "data_type": Enum("TYPE_UINT8"), "format": Enum("FORMAT_NHWC"),
                   "dims": image}],
        "output": outputs, "dynamic_batching": batcher,
        "instance_group": [{"count": options.instances, "kind": Enum(f"KIND_{device.upper()}")}],
    }
    if artifact.kind == "graph" and options.tensorrt_accelerator:
        mode = "FP16" if artifact.precision == "fp16" else "FP32"
        config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [
            {"name": "tensorrt", "parameters": [{"key": "precision_mode", "value": mode}]}]}}
    if options.warmup:
        config["model_warmup"] = [{"name": "zero_batch", "batch_size": preferred[-1] if preferred else 1,
                                   "inputs": [{"key": input_name, "value": {
                                       "data_type": Enum("TYPE_UINT8"), "dims": image, "zero_data": True}}]}]
    params = {"gedge.threshold": repr(artifact.threshold), "gedge.primary_score": artifact.primary,
              "gedge.score_stats": json.dumps(artifact.model_facts().score_stats, sort_keys=True),
              "gedge.sha256": artifact.sha256, "gedge.precision": artifact.precision,
              "gedge.facts": json.dumps(served_facts(artifact, name, max_batch, value).to_dict(), sort_keys=True)}
    config["parameters"] = [{"key": k, "value": {"string_value": v}} for k, v in params.items()]
    return config, device


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return f'"{text_encoding.CEscape(str(value), as_utf8=True)}"'  # escaped as protobuf's text format reads


def to_pbtxt(message: dict[str, Any], indent: int = 0) -> str:
    """Protobuf text format of nested values: dicts are messages, lists of dicts repeated messages."""
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        if isinstance(value, dict):
            lines += [f"{pad}{key} {{", to_pbtxt(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks = [f"{pad}  {{\n{to_pbtxt(v, indent + 2)}\n{pad}  }}" for v in value]
            lines.append(f"{pad}{key} [\n" + ",\n".join(blocks) + f"\n{pad}]")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [ {', '.join(_scalar(v) for v in value)} ]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(line for line in lines if line)


def validate_config(text: str, where: Path) -> bool:
    """Parse the config with Triton's ModelConfig protobuf (False where tritonclient is not installed)."""
    if not available("tritonclient.grpc.model_config_pb2"):
        return False
    schema = require("tritonclient.grpc.model_config_pb2", "checking config.pbtxt against Triton's schema")
    try:
        text_format.Parse(text, schema.ModelConfig())
    except text_format.ParseError as exc:
        raise ArtifactError(f"Triton's ModelConfig rejects the config gedge wrote: {exc}", where) from None
    return True


def next_version(folder: Path) -> int:
    versions = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()] if folder.is_dir() else []
    return max(versions, default=0) + 1


def _check_existing(folder: Path, key: str, value: str) -> None:
    config = folder / "config.pbtxt"
    if config.is_file() and f'{key}: "{value}"' not in config.read_text():
        raise ConfigError(f"{folder}: this model holds another kind of artifact (not {value}); give --name for a "
                          "new model")


def write_model(repo: Path, name: str, artifact: Artifact, options: TritonExportOptions) -> TritonModel:
    """One artifact as model ``name`` in ``repo``: its config, its files under a new version folder."""
    config, device = model_config(name, artifact, options)
    text = to_pbtxt(config) + "\n"
    folder = repo / name
    key, value, filename = PLATFORMS[artifact.kind]
    _check_existing(folder, key, value)
    version = options.version or next_version(folder)
    target = folder / str(version)
    if target.exists():
        raise ConfigError(f"{target}: version {version} of model {name} exists already")
    validated = validate_config(text, folder / "config.pbtxt")
    files = [(Path(artifact.path), target / filename)]
    files += [(extra, (target / filename).with_suffix(extra.suffix)) for extra in artifact.extra_files]
    if artifact.facts_file is not None:
        files.append((artifact.facts_file, target / artifact.facts_file.name))
    for source, destination in files:
        write_with(destination, lambda tmp, source=source: shutil.copyfile(source, tmp))
    config_path = write_with(folder / "config.pbtxt", lambda tmp: tmp.write_text(text))
    max_batch, preferred = config["max_batch_size"], config["dynamic_batching"].get("preferred_batch_size", [])
    verified = artifact.verification
    return TritonModel(name, version, str(folder), str(config_path), value, artifact.name, artifact.sha256,
                       max_batch, preferred, device, options.instances, validated,
                       [str(d) for _, d in files], verified.line() if verified else "",
                       list(verified.forced) if verified else [])
