"""Import detectors trained elsewhere: the original GANomaly code and anomalib's GANomaly.

Supported files:

* ``ganomaly-netg`` / ``ganomaly-netd``: the original implementation (samet-akcay/ganomaly) saves
  ``netG.pth`` and ``netD.pth`` as ``{'epoch': int, 'state_dict': OrderedDict}``; a bare state dict
  (also with a ``module.`` prefix from DataParallel) is accepted too. G's keys are
  ``encoder1.main.<name>``, ``decoder.main.<name>``, ``encoder2.main.<name>`` with names such as
  ``initial-conv-3-64``, ``extra-layers-0-64-conv``, ``pyramid-64-128-conv``, ``pyramid-128-batchnorm``,
  ``final-512-100-conv``; D's are ``features.<i>`` and ``classifier.<i>`` (numbered, because the original
  NetD re-wraps the encoder's layers in plain Sequentials). Its classifier ends in a parameter-free
  Sigmoid; gedge's classifier returns the logit, so ``sigmoid(logit)`` is the original output.
* ``anomalib-ckpt``: a Lightning checkpoint of anomalib's ``Ganomaly``; its ``state_dict`` holds
  ``model.generator.{encoder1,encoder2}.{input_layers,extra_layers,pyramid_features}.<name>`` and
  ``...final_conv_layer``, ``model.generator.decoder.{latent_input,inverse_pyramid,extra_layers,
  final_layers}.<name>`` and ``model.discriminator.{features,classifier}.<i>``. Its first encoder conv
  pads by 4, which gedge reproduces with ``ModelConfig.first_padding = 4`` (isize 32 or more).

The model shape (isize, nc, nz, ngf, ndf, extralayers) is inferred from the tensor shapes; tensors are
mapped layer by layer, in file order, onto gedge's networks with every shape checked. Anything that does
not fit is refused with one :class:`ArtifactError` line naming the file.

Foreign checkpoints often pickle objects gedge does not know (Lightning hyper-parameter containers,
omegaconf configs, transforms). Files are first read with ``weights_only=True``; if that refuses, they are
read with a restricted unpickler that only ever calls PyTorch's tensor-rebuilding functions and a few
builtins, and replaces every other class or function by an inert placeholder; no foreign code runs.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import types
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.preprocess import Preprocess
from gedge.reference.checkpoint import FORMAT as GEDGE_FORMAT
from gedge.reference.checkpoint import Checkpoint, load_checkpoint
from gedge.reference.model import ModelConfig, NetD, NetG

FORMATS = ("ganomaly-netg", "ganomaly-netd", "anomalib-ckpt", "gedge")


UNCALIBRATED_RULE = "uncalibrated import: run `gedge import --data` or evaluate to calibrate"


ANOMALIB_PADDING = 4


_BN_LEAVES = frozenset({"weight", "bias", "running_mean", "running_var"})


_ANOMALIB_ENCODER_PARTS = ("input_layers", "extra_layers", "pyramid_features", "final_conv_layer")


_ANOMALIB_DECODER_PARTS = ("latent_input", "inverse_pyramid", "extra_layers", "final_layers")


class _Opaque(dict):
    """Inert stand-in for a pickled object of a class that is not allowed; keeps its data, runs nothing."""

    _origin = "?"

    def __new__(cls, *args, **kwargs):
        return dict.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        self.__dict__["opaque_args"] = args

    def __setstate__(self, state) -> None:
        self.__dict__["opaque_state"] = state

    def append(self, item) -> None:
        self.__dict__.setdefault("opaque_items", []).append(item)

    def extend(self, items) -> None:
        for item in items:
            self.append(item)

    def __repr__(self) -> str:
        return f"<opaque {self._origin}>"


_OPAQUE_CLASSES: dict[str, type] = {}


def _opaque_class(module: str, name: str) -> type:
    origin = f"{module}.{name}"
    if origin not in _OPAQUE_CLASSES:
        _OPAQUE_CLASSES[origin] = type("Opaque", (_Opaque,), {"_origin": origin})
    return _OPAQUE_CLASSES[origin]


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
        ("_codecs", "encode"): __import__("_codecs").encode,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    for name in ("set", "frozenset", "complex", "slice", "range", "bytearray"):
        allowed[("builtins", name)] = getattr(__import__("builtins"), name)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals (and torch dtypes); everything else becomes an opaque class."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _opaque_class(module, name)


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


_RESTRICTED_PICKLE = types.ModuleType("gedge_restricted_pickle")


_RESTRICTED_PICKLE.Unpickler = _RestrictedUnpickler


_RESTRICTED_PICKLE.load = _restricted_load


_RESTRICTED_PICKLE.loads = lambda data, **kwargs: _restricted_load(io.BytesIO(data), **kwargs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else exc.__class__.__name__


def _read(path: str | Path) -> object:
    """Everything a torch.save file holds, read on the CPU without running foreign code."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("file does not exist", path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # foreign classes, or a truncated / corrupt file: try the tolerant reader
            pass
        try:
            return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
        except Exception as exc:  # torch and pickle raise many types for truncated or foreign files
            raise ArtifactError(f"not a readable PyTorch file (truncated or corrupt?): {_first_line(exc)}",
                                path) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value, depth: int = 0):
    """Plain Python data from loaded hyper-parameters (dicts, lists, omegaconf-like opaque containers)."""
    if depth > 12:
        return None
    if isinstance(value, _Opaque):
        if len(value):
            return {k: _plain(v, depth + 1) for k, v in value.items()}
        state = value.__dict__.get("opaque_state")
        if isinstance(state, Mapping):
            if "_content" in state:  # omegaconf DictConfig / ListConfig
                return _plain(state["_content"], depth + 1)
            if "_val" in state:  # omegaconf ValueNode
                return _plain(state["_val"], depth + 1)
            return {k: _plain(v, depth + 1) for k, v in state.items() if isinstance(k, str)}
        if "opaque_items" in value.__dict__:
            return [_plain(v, depth + 1) for v in value.__dict__["opaque_items"]]
        args = value.__dict__.get("opaque_args", ())
        return _plain(args[0], depth + 1) if len(args) == 1 else None
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return None


def _tensor_state(obj) -> dict[str, torch.Tensor] | None:
    """The state dict inside ``{'state_dict': ...}`` or a bare one; ``module.`` prefixes removed."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        return None
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return None
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _classify(obj) -> str | None:
    if isinstance(obj, Mapping) and obj.get("format") == GEDGE_FORMAT:
        return "gedge"
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        keys = [k for k in obj["state_dict"] if isinstance(k, str)]
        if any(k.startswith("model.generator.") for k in keys) or any(
                k.startswith("model.discriminator.") for k in keys):
            return "anomalib-ckpt"
    state = _tensor_state(obj)
    if state is None:
        return None
    roots = {k.split(".", 1)[0] for k in state}
    if roots == {"encoder1", "decoder", "encoder2"}:
        return "ganomaly-netg"
    if roots == {"features", "classifier"}:
        return "ganomaly-netd"
    return None


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS` for a file, or :class:`ArtifactError` if it is none of them."""
    kind = _classify(_read(path))
    if kind is None:
        raise ArtifactError("not a GANomaly netG/netD file, anomalib GANomaly checkpoint or gedge checkpoint",
                            path)
    return kind


@dataclass
class _Layer:
    """One module's tensors: a convolution (``weight`` only) or a BatchNorm."""

    name: str
    kind: str
    leaves: dict[str, torch.Tensor]

    @property
    def weight(self) -> torch.Tensor:
        return self.leaves["weight"]


def _stage(name: str, decoder: bool) -> int | None:
    """Position of a named original/anomalib layer in the network (None for numbered layers)."""
    last = name.rsplit(".", 1)[-1]
    head = name.split(".", 1)[0]
    if last.isdigit():
        return None
    if last.startswith("initial") or head in ("input_layers", "latent_input"):
        return 0
    if last.startswith("extra-layers") or head == "extra_layers":
        return 2 if decoder else 1
    if last.startswith("pyramid") or head in ("pyramid_features", "inverse_pyramid"):
        return 1 if decoder else 2
    if last.startswith("final") or head in ("final_conv_layer", "final_layers"):
        return 3
    return None


def _layers(state: Mapping[str, torch.Tensor], prefix: str, path: Path | None,
            parts: tuple[str, ...] | None = None, decoder: bool = False) -> list[_Layer]:
    """The layers under ``prefix`` in file order, each checked to be a conv or a BatchNorm."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith(prefix):
            module, _, leaf = key[len(prefix):].rpartition(".")
            if parts is not None and module.split(".", 1)[0] not in parts:
                raise ArtifactError(f"unexpected key {key} (expected {prefix}{{{','.join(parts)}}}.*)", path)
            groups.setdefault(module, {})[leaf] = value
    layers, last_stage, last_index = [], -1, -1
    for module, leaves in groups.items():
        name = prefix + module
        names = set(leaves)
        if names == {"weight"} and leaves["weight"].dim() == 4:
            kind = "conv"
        elif _BN_LEAVES <= names <= _BN_LEAVES | {"num_batches_tracked"} and leaves["weight"].dim() == 1:
            kind = "bn"
        else:
            raise ArtifactError(f"layer {name} has tensors {sorted(names)}; expected a bias-free convolution "
                                "or a BatchNorm", path)
        stage = _stage(module, decoder)
        if stage is not None:
            if stage < last_stage:
                raise ArtifactError(f"layer {name} is out of order (the file's layers must be in network order)",
                                    path)
            last_stage = stage
        last = module.rsplit(".", 1)[-1]
        if last.isdigit():
            if int(last) <= last_index:
                raise ArtifactError(f"layer {name} is out of order (the file's layers must be in network order)",
                                    path)
            last_index = int(last)
        layers.append(_Layer(name, kind, leaves))
    return layers


@dataclass
class _EncoderShape:
    nc: int
    nf: int
    nz: int
    extralayers: int
    pyramid: int

    @property
    def isize(self) -> int:
        return 2 ** (self.pyramid + 3)


def _encoder_shape(layers: list[_Layer], where: str, path: Path) -> _EncoderShape:
    convs = [layer for layer in layers if layer.kind == "conv"]
    if len(convs) < 2:
        raise ArtifactError(f"{where} has {len(convs)} convolution(s); a GANomaly encoder has at least 2", path)
    first, last = convs[0].weight, convs[-1].weight
    if tuple(first.shape[2:]) != (4, 4) or tuple(last.shape[2:]) != (4, 4):
        raise ArtifactError(f"{where}: first and last convolutions must be 4x4, got {tuple(first.shape)} and "
                            f"{tuple(last.shape)}", path)
    middle = [tuple(c.weight.shape[2:]) for c in convs[1:-1]]
    if any(k not in ((3, 3), (4, 4)) for k in middle):
        raise ArtifactError(f"{where}: unexpected kernel sizes {middle}", path)
    return _EncoderShape(nc=int(first.shape[1]), nf=int(first.shape[0]), nz=int(last.shape[0]),
                         extralayers=middle.count((3, 3)), pyramid=middle.count((4, 4)))


def _transfer(src: list[_Layer], dst_state: Mapping[str, torch.Tensor], dst_prefix: str, where: str,
              path: Path) -> dict[str, torch.Tensor]:
    """Copy ``src`` onto the gedge layers under ``dst_prefix``; counts, kinds and shapes must all match."""
    dst = _layers(dst_state, dst_prefix, None)
    if len(src) != len(dst):
        raise ArtifactError(f"{where} has {len(src)} layers with weights; the inferred model needs {len(dst)}",
                            path)
    out: dict[str, torch.Tensor] = {}
    for s, d in zip(src, dst):
        if s.kind != d.kind:
            raise ArtifactError(f"{s.name} is a {s.kind} where the inferred model has a {d.kind}", path)
        for leaf, target in d.leaves.items():
            key = f"{d.name}.{leaf}"
            if leaf not in s.leaves:  # num_batches_tracked, absent in files from PyTorch < 0.4.1
                out[key] = torch.zeros_like(target)
                continue
            value = s.leaves[leaf]
            if tuple(value.shape) != tuple(target.shape):
                raise ArtifactError(f"{s.name}.{leaf} has shape {tuple(value.shape)}; the inferred model needs "
                                    f"{tuple(target.shape)}", path)
            if leaf != "num_batches_tracked" and not value.is_floating_point():
                raise ArtifactError(f"{s.name}.{leaf} is {value.dtype}, not a floating-point tensor", path)
            out[key] = value.detach().to(device="cpu", dtype=target.dtype).clone().contiguous()
    return out


def _config(path: Path, **values) -> ModelConfig:
    try:
        return ModelConfig(**values)
    except ConfigError as exc:
        raise ArtifactError(f"the weights describe a model gedge cannot represent: {exc.problem}", path) from None


def _check_expected(name: str, expected: int | None, found: int, path: Path) -> None:
    if expected is not None and expected != found:
        raise ArtifactError(f"the weights are for {name} {found}, not the requested {name} {expected}", path)


def _build(config: ModelConfig, g_src: dict[str, list[_Layer]], d_src: dict[str, list[_Layer]],
           g_path: Path, d_path: Path) -> tuple[dict, dict]:
    """gedge state dicts for the inferred config, filled from the source layers."""
    netg, netd = NetG(config), NetD(config)
    g_state, d_state = netg.state_dict(), netd.state_dict()
    netg_state: dict[str, torch.Tensor] = {}
    for part in ("encoder1", "decoder", "encoder2"):
        netg_state.update(_transfer(g_src[part], g_state, f"{part}.", f"generator {part}", g_path))
    netd_state: dict[str, torch.Tensor] = {}
    for part in ("features", "classifier"):
        netd_state.update(_transfer(d_src[part], d_state, f"{part}.", f"discriminator {part}", d_path))
    return netg_state, netd_state


def _infer(g_src: dict[str, list[_Layer]], d_src: dict[str, list[_Layer]], g_path: Path, d_path: Path,
           first_padding: int, isize: int | None, nc: int | None) -> ModelConfig:
    g = _encoder_shape(g_src["encoder1"], "generator encoder1", g_path)
    d = _encoder_shape(d_src["features"] + d_src["classifier"], "discriminator", d_path)
    _check_expected("isize", isize, g.isize, g_path)
    _check_expected("nc", nc, g.nc, g_path)
    if d.nz != 1:
        raise ArtifactError(f"the discriminator's classifier has {d.nz} outputs, expected 1", d_path)
    if (d.isize, d.nc, d.extralayers) != (g.isize, g.nc, g.extralayers):
        raise ArtifactError(f"discriminator is for isize {d.isize}, nc {d.nc}, extralayers {d.extralayers} but "
                            f"the generator is for isize {g.isize}, nc {g.nc}, extralayers {g.extralayers}", d_path)
    return _config(g_path, isize=g.isize, nc=g.nc, nz=g.nz, ngf=g.nf, ndf=d.nf, extralayers=g.extralayers,
                   first_padding=first_padding)


def _checkpoint(config: ModelConfig, netg_state: dict, netd_state: dict, facts: dict, path: Path,
                preprocess: Preprocess | None, decision: DecisionRule | None) -> Checkpoint:
    if preprocess is None:
        preprocess = Preprocess(mode="resize", isize=config.isize, channels=config.nc)
    elif preprocess.isize != config.isize or preprocess.channels != config.nc:
        raise ConfigError(f"preprocess is for {preprocess.isize}px, {preprocess.channels} channel(s) but the "
                          f"imported model takes {config.isize}px, {config.nc} channel(s)")
    if decision is None:
        decision = DecisionRule(primary="d1", threshold_rule=UNCALIBRATED_RULE)
    checkpoint = Checkpoint(model=config, preprocess=preprocess, decision=decision,
                            netg_state=netg_state, netd_state=netd_state, facts=facts)
    try:
        checkpoint.networks()
    except ArtifactError as exc:
        raise ArtifactError(exc.problem, path) from None
    return checkpoint


def _ganomaly_state(path: Path, want: str) -> tuple[dict[str, torch.Tensor], dict]:
    obj = _read(path)
    kind = _classify(obj)
    if kind != want:
        found = f"a {kind} file" if kind else "not a GANomaly state dict"
        other = "netD" if want == "ganomaly-netd" else "netG"
        raise ArtifactError(f"expected the original GANomaly {other} file, found {found}", path)
    meta = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("epoch"), int):
        meta["epoch"] = obj["epoch"]
    return _tensor_state(obj), meta


def import_ganomaly(netg_path: str | Path, netd_path: str | Path, *, isize: int | None = None,
                    nc: int | None = None, preprocess: Preprocess | None = None,
                    decision: DecisionRule | None = None) -> Checkpoint:
    """A gedge checkpoint from the original GANomaly code's ``netG.pth`` and ``netD.pth``.

    ``isize`` and ``nc``, when given, must agree with the shapes in the files (they are inferred anyway).
    The result is uncalibrated unless ``decision`` is given.
    """
    g_path, d_path = Path(netg_path), Path(netd_path)
    g_state, g_meta = _ganomaly_state(g_path, "ganomaly-netg")
    d_state, d_meta = _ganomaly_state(d_path, "ganomaly-netd")
    g_src = {part: _layers(g_state, f"{part}.", g_path, ("main",), decoder=part == "decoder")
             for part in ("encoder1", "decoder", "encoder2")}
    d_src = {part: _layers(d_state, f"{part}.", d_path) for part in ("features", "classifier")}
    config = _infer(g_src, d_src, g_path, d_path, 1, isize, nc)
    netg_state, netd_state = _build(config, g_src, d_src, g_path, d_path)
    facts = {"imported_from": "ganomaly", "source": str(g_path), "source_sha256": _sha256(g_path),
             "source_netd": str(d_path), "source_netd_sha256": _sha256(d_path)}
    if "epoch" in g_meta:
        facts["epoch"] = g_meta["epoch"]
    if "epoch" in d_meta:
        facts["epoch_netd"] = d_meta["epoch"]
    return _checkpoint(config, netg_state, netd_state, facts, g_path, preprocess, decision)


def _find(tree, key: str, depth: int = 0):
    """First value stored under ``key`` anywhere in nested hyper-parameters."""
    if isinstance(tree, dict) and depth < 6:
        if key in tree and tree[key] is not None:
            return tree[key]
        for value in tree.values():
            found = _find(value, key, depth + 1)
            if found is not None:
                return found
    return None


def _anomalib_hparams(obj: Mapping) -> dict:
    tree = _plain(obj.get("hyper_parameters", obj.get("hparams")))
    if not isinstance(tree, dict):
        return {}
    found = {}
    for key in ("input_size", "n_features", "latent_vec_size", "extra_layers", "add_final_conv_layer",
                "add_final_conv"):
        value = _find(tree, key)
        if value is not None:
            found[key] = value
    return found


def _anomalib_input_size(value, path: Path) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = [value, value]
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        return None
    h, w = value
    if h != w:
        raise ArtifactError(f"anomalib input_size is {h}x{w}; gedge imports square models only", path)
    if h < 1 or h & (h - 1):
        raise ArtifactError(f"anomalib input_size {h} is not a power of two (anomalib pads such inputs to the "
                            "next power of two, which gedge's preprocessing does not reproduce)", path)
    return h


def import_anomalib(ckpt_path: str | Path, *, isize: int | None = None, nc: int | None = None,
                    preprocess: Preprocess | None = None,
                    decision: DecisionRule | None = None) -> Checkpoint:
    """A gedge checkpoint from an anomalib GANomaly Lightning checkpoint (``.ckpt``).

    The first encoder convolution pads by 4 as in anomalib (``ModelConfig.first_padding = 4``). The
    shape is inferred from the tensors and cross-checked with the checkpoint's ``hyper_parameters``
    when present; ``isize`` and ``nc``, when given, must agree too.
    """
    path = Path(ckpt_path)
    obj = _read(path)
    kind = _classify(obj)
    if kind != "anomalib-ckpt":
        found = f"a {kind} file" if kind else "no model.generator.* / model.discriminator.* weights"
        raise ArtifactError(f"expected an anomalib GANomaly checkpoint, found {found}", path)
    raw = obj["state_dict"]
    state = {k: v for k, v in raw.items() if isinstance(k, str)
             and (k.startswith("model.generator.") or k.startswith("model.discriminator."))}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ArtifactError(f"{bad[0]} is not a tensor", path)
    for key in state:
        root = ".".join(key.split(".")[:3])
        if root not in ("model.generator.encoder1", "model.generator.decoder", "model.generator.encoder2",
                        "model.discriminator.features", "model.discriminator.classifier"):
            raise ArtifactError(f"unexpected key {key} for anomalib's GANomaly", path)
    for part in ("encoder1", "encoder2"):
        if f"model.generator.{part}.final_conv_layer.weight" not in state:
            raise ArtifactError(f"generator {part} has no final_conv_layer (add_final_conv_layer=False); "
                                "gedge needs the latent convolution", path)
    g_src = {
        "encoder1": _layers(state, "model.generator.encoder1.", path, _ANOMALIB_ENCODER_PARTS),
        "decoder": _layers(state, "model.generator.decoder.", path, _ANOMALIB_DECODER_PARTS, decoder=True),
        "encoder2": _layers(state, "model.generator.encoder2.", path, _ANOMALIB_ENCODER_PARTS),
    }
    d_src = {part: _layers(state, f"model.discriminator.{part}.", path) for part in ("features", "classifier")}
    hp = _anomalib_hparams(obj)
    shape = _encoder_shape(g_src["encoder1"], "generator encoder1", path)
    hp_isize = _anomalib_input_size(hp.get("input_size"), path)
    if hp_isize is not None and hp_isize != shape.isize:
        raise ArtifactError(f"hyper_parameters say input_size {hp_isize} but the weights are for isize "
                            f"{shape.isize}", path)
    for key, found in (("n_features", shape.nf), ("latent_vec_size", shape.nz), ("extra_layers",
                                                                                 shape.extralayers)):
        value = hp.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value != found:
            raise ArtifactError(f"hyper_parameters say {key} {value} but the weights have {found}", path)
    if shape.extralayers:
        raise ArtifactError(f"anomalib model has {shape.extralayers} extra layer(s); anomalib's decoder extra "
                            "layers use LeakyReLU where gedge's use ReLU, so it cannot be imported exactly", path)
    if shape.isize < 32:
        raise ArtifactError(f"anomalib model for isize {shape.isize}: its padding-4 first convolution leaves a "
                            "2x2 latent below isize 32, which gedge does not support", path)
    config = _infer(g_src, d_src, path, path, ANOMALIB_PADDING, isize, nc)
    netg_state, netd_state = _build(config, g_src, d_src, path, path)
    facts = {"imported_from": "anomalib", "source": str(path), "source_sha256": _sha256(path),
             "input_note": "anomalib normalises inputs with its own transform (often ImageNet mean/std); "
                           "gedge feeds [-1, 1]: calibrate on your data"}
    for key in ("epoch", "global_step"):
        if isinstance(obj.get(key), int) and not isinstance(obj.get(key), bool):
            facts[key] = obj[key]
    version = obj.get("pytorch-lightning_version")
    if isinstance(version, str):
        facts["lightning_version"] = version
    hp_facts = {k: v for k, v in hp.items() if isinstance(v, (int, float, str, bool, list))}
    if hp_facts:
        facts["anomalib_hyper_parameters"] = hp_facts
    return _checkpoint(config, netg_state, netd_state, facts, path, preprocess, decision)


def import_file(path: str | Path, netd_path: str | Path | None = None, **options) -> Checkpoint:
    """Import whatever ``path`` is (see :func:`detect_format`); a GANomaly netG needs ``netd_path``."""
    kind = detect_format(path)
    if kind == "gedge":
        return load_checkpoint(path)
    if kind == "anomalib-ckpt":
        if netd_path is not None:
            raise ArtifactError("an anomalib checkpoint holds both networks; no netD file is needed", netd_path)
        return import_anomalib(path, **options)
    if kind == "ganomaly-netd":
        raise ArtifactError("this is a GANomaly netD file; pass the netG file first and netD second", path)
    if netd_path is None:
        raise ArtifactError("a GANomaly netG file needs its netD file (netD.pth) as well", path)
    return import_ganomaly(path, netd_path, **options)


__all__ = ["FORMATS", "UNCALIBRATED_RULE", "detect_format", "import_anomalib", "import_file", "import_ganomaly"]
