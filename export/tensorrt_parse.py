"""Importing TensorRT, whichever flavour is installed, and the few calls gedge makes into it.

Two Python modules implement the same builder and ONNX parser API:

* ``tensorrt``: the classic library (8.5/8.6 on JetPack 5/6.0, 10.x on JetPack 6.1+, 11.x on servers);
* ``tensorrt_rtx``: TensorRT for RTX, whose parser and builder run without a GPU and build engines ahead of
  time for chosen compute capabilities. It is what CI installs (``tensorrt-rtx-cu13``).

Enum members are always looked up by name: their integer values changed between versions. Flags a version
lacks (``EXPLICIT_BATCH`` went away in 10.x, ``STRONGLY_TYPED`` arrived in 9.x) are probed, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gedge.core.tensorrt import TensorRT, TensorRTLogger, creation_flags, member


@dataclass
class ParserIssue:
    """One error of TensorRT's ONNX parser, with the node it is about (empty when not about a node)."""

    node_name: str
    operator: str
    node_index: int
    code: str
    description: str

    def line(self) -> str:
        where = f"node {self.node_name!r} ({self.operator})" if self.node_name or self.operator else "graph"
        return f"{where}: {self.description} [{self.code}]"


@dataclass
class ParseResult:
    ok: bool
    issues: list[ParserIssue] = field(default_factory=list)
    unsupported_nodes: list[str] = field(default_factory=list)


def _clean(description: str) -> str:
    """One line from a parser error; drops the CUDA-runtime noise a GPU-less machine adds to each message."""
    lines = [ln.strip() for ln in description.strip().splitlines() if ln.strip()]
    return " | ".join(ln for ln in lines if "catchCudaError" not in ln and "CUDA driver version" not in ln)


def _network_flags(trt: TensorRT, strongly_typed: bool) -> int:
    # EXPLICIT_BATCH is required while implicit batch exists (8.x: IBuilder.max_batch_size), ignored later.
    explicit = hasattr(trt.module.Builder, "max_batch_size")
    return creation_flags(trt.module, strongly_typed, explicit)


class ParsedNetwork:
    """TensorRT's builder, network and ONNX parser for one graph; keep it alive while using the network."""

    def __init__(self, trt: TensorRT, graph: bytes, strongly_typed: bool = True, flags: int | None = None) -> None:
        self.trt = trt
        self.logger = TensorRTLogger(trt.module)
        self.builder = trt.module.Builder(self.logger.impl)
        flags = _network_flags(trt, strongly_typed) if flags is None else flags
        typed = member(trt.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
        # TensorRT-RTX networks are always strongly typed; classic TensorRT's are where the flag exists.
        self.strongly_typed = trt.is_rtx or (typed is not None and bool(flags & (1 << int(typed))))
        self.network = self.builder.create_network(flags)
        self.parser = trt.module.OnnxParser(self.network, self.logger.impl)
        self.graph = graph
        self.ok = bool(self.parser.parse(graph))

    def result(self, node_names: list[str] | None = None) -> ParseResult:
        issues = []
        for i in range(self.parser.num_errors):
            error = self.parser.get_error(i)
            index = int(error.node())
            name = str(error.node_name()) if hasattr(error, "node_name") else ""
            operator = str(error.node_operator()) if hasattr(error, "node_operator") else ""
            if not name and node_names and 0 <= index < len(node_names):
                name = node_names[index]
            code = str(error.code()).split(".")[-1]
            issues.append(ParserIssue(name, operator, index, code, _clean(str(error.desc()))))
        if not self.ok and not issues:
            issues.append(ParserIssue("", "", -1, "UNKNOWN", "; ".join(self.logger.errors()) or "parse failed"))
        unsupported = sorted({i.node_name for i in issues if i.node_name})
        return ParseResult(self.ok, issues, unsupported)

    def input_names(self) -> list[str]:
        return [self.network.get_input(i).name for i in range(self.network.num_inputs)]

    def build(self, min_batch: int = 1, opt_batch: int = 8, max_batch: int = 64,
              compute_capabilities: list[str] | None = None, fp16_flag: bool = False) -> bytes:
        """Serialise an engine; raises RuntimeError with TensorRT's own messages on failure.

        ``compute_capabilities`` (TensorRT-RTX only), e.g. ``["SM86", "SM89"]``: build ahead of time for those
        GPUs, with no GPU present. ``fp16_flag``: the FP16 builder flag, for versions that still have it
        (TensorRT 8.x/10.x with a weakly typed network); strongly typed FP16 graphs do not need it.
        """
        if not self.ok:
            raise RuntimeError("the graph did not parse")
        module = self.trt.module
        config = self.builder.create_builder_config()
        profile = self.builder.create_optimization_profile()
        for i in range(self.network.num_inputs):
            tensor = self.network.get_input(i)
            shape = list(tensor.shape)
            if shape and shape[0] == -1:
                dims = [tuple([b, *shape[1:]]) for b in (min_batch, opt_batch, max_batch)]
                profile.set_shape(tensor.name, *dims)
        if config.add_optimization_profile(profile) < 0:  # -1: the profile is invalid for this network
            raise RuntimeError(f"TensorRT refused the optimisation profile (batch {min_batch}/{opt_batch}/{max_batch})")
        if compute_capabilities:
            if not hasattr(config, "set_compute_capability"):
                raise RuntimeError(f"{self.trt.name} {self.trt.version} cannot target compute capabilities")
            config.num_compute_capabilities = len(compute_capabilities)
            for slot, cc in enumerate(compute_capabilities):
                value = member(module.ComputeCapability, cc.upper())
                if value is None:
                    known = ", ".join(k for k in module.ComputeCapability.__members__ if k.startswith("SM"))
                    raise RuntimeError(f"unknown compute capability {cc!r} (this TensorRT knows {known})")
                if not config.set_compute_capability(value, slot):
                    raise RuntimeError(f"TensorRT refused set_compute_capability({cc}, {slot})")
        if fp16_flag and not self.strongly_typed:  # a strongly typed network takes its types from the graph
            flag = member(module.BuilderFlag, "FP16")
            if flag is not None:
                config.set_flag(flag)
        before = len(self.logger.messages)
        serialized = self.builder.build_serialized_network(self.network, config)
        if serialized is None:
            raise RuntimeError("; ".join(self.logger.errors(before)) or "the builder returned no engine")
        return bytes(serialized)
