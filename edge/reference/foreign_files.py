"""Reading PyTorch files written by other projects without running their code, and telling which kind they are.

Foreign checkpoints often pickle objects gedge does not know (Lightning hyper-parameter containers, omegaconf
configs, transforms). A file is first read with ``weights_only=True``; if that refuses, it is read with a
restricted unpickler that only ever calls PyTorch's tensor-rebuilding functions and a few builtins, and replaces
every other class or function by an inert placeholder (:class:`Opaque`), so no foreign code runs.
:func:`plain_data` turns such placeholders back into plain dicts and lists where they held configuration.

:func:`file_kind` recognises the formats gedge imports (:data:`FORMATS`) from what a file holds.
"""

from __future__ import annotations

import builtins
import codecs
import io
import pickle
import types
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from gedge.core.errors import ArtifactError, first_line
from gedge.reference.checkpoint import FORMAT as GEDGE_FORMAT

FORMATS = ("ganomaly-netg", "ganomaly-netd", "anomalib-ckpt", "gedge")


class Opaque(dict):
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
    """One placeholder class per foreign name, so that the same name always maps to the same class."""
    origin = f"{module}.{name}"
    if origin not in _OPAQUE_CLASSES:
        _OPAQUE_CLASSES[origin] = type("Opaque", (Opaque,), {"_origin": origin})
    return _OPAQUE_CLASSES[origin]


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The only globals a foreign pickle may resolve: containers, torch's tensor rebuilders, harmless builtins."""
    allowed: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
        ("_codecs", "encode"): codecs.encode,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    for name in ("set", "frozenset", "complex", "slice", "range", "bytearray"):
        allowed[("builtins", name)] = getattr(builtins, name)
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
    """``pickle.load`` for ``torch.load(pickle_module=...)``, through the restricted unpickler."""
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load takes a pickle *module*; this one offers the restricted Unpickler, load and loads.
_RESTRICTED_PICKLE = types.ModuleType("gedge_restricted_pickle")
_RESTRICTED_PICKLE.Unpickler = _RestrictedUnpickler
_RESTRICTED_PICKLE.load = _restricted_load
_RESTRICTED_PICKLE.loads = lambda data, **kwargs: _restricted_load(io.BytesIO(data), **kwargs)


def read_torch_file(path: str | Path) -> object:
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
            raise ArtifactError(f"not a readable PyTorch file (truncated or corrupt?): {first_line(exc)}",
                                path) from None


def plain_data(value, depth: int = 0):
    """Plain Python data from loaded hyper-parameters (dicts, lists, omegaconf-like opaque containers)."""
    if depth > 12:
        return None
    if isinstance(value, Opaque):
        if len(value):
            return {k: plain_data(v, depth + 1) for k, v in value.items()}
        state = value.__dict__.get("opaque_state")
        if isinstance(state, Mapping):
            if "_content" in state:  # omegaconf DictConfig / ListConfig
                return plain_data(state["_content"], depth + 1)
            if "_val" in state:  # omegaconf ValueNode
                return plain_data(state["_val"], depth + 1)
            return {k: plain_data(v, depth + 1) for k, v in state.items() if isinstance(k, str)}
        if "opaque_items" in value.__dict__:
            return [plain_data(v, depth + 1) for v in value.__dict__["opaque_items"]]
        args = value.__dict__.get("opaque_args", ())
        return plain_data(args[0], depth + 1) if len(args) == 1 else None
    if isinstance(value, Mapping):
        return {k: plain_data(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v, depth + 1) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return None


def tensor_state(obj) -> dict[str, torch.Tensor] | None:
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


def file_kind(obj) -> str | None:
    """Which of :data:`FORMATS` a loaded file's contents are, from their keys; None if none of them."""
    if isinstance(obj, Mapping) and obj.get("format") == GEDGE_FORMAT:
        return "gedge"
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        keys = [k for k in obj["state_dict"] if isinstance(k, str)]
        if any(k.startswith("model.generator.") for k in keys) or any(
                k.startswith("model.discriminator.") for k in keys):
            return "anomalib-ckpt"
    state = tensor_state(obj)
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
    kind = file_kind(read_torch_file(path))
    if kind is None:
        raise ArtifactError("not a GANomaly netG/netD file, anomalib GANomaly checkpoint or gedge checkpoint",
                            path)
    return kind
