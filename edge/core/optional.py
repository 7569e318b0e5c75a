"""The optional heavy dependencies, imported in one place.

gedge's core needs only numpy, onnx, typer and rich, so that a device can inspect with an exported graph or an
engine. torch (training and the reference), onnxruntime, OpenVINO and NNCF, TensorRT (classic or RTX) and the
CUDA bindings come with extras. A module that always needs one of them imports it at its top; where a
dependency is needed only on one path at run time (a backend, a command, a GPU probe), it is imported here,
by :func:`require`, which turns a missing package into a one-line error with the install command.

This is the only module in gedge that imports inside functions (a test checks it).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gedge.core.errors import ConfigError, first_line

# Top-level package -> how to install it.
INSTALL_HINTS: dict[str, str] = {
    "torch": "pip install torch==2.13.0 (pinned; see the README), then pip install 'gedge[train]'",
    "onnxruntime": "pip install 'gedge[cpu]'",
    "onnxscript": "pip install 'gedge[export]'",
    "openvino": "pip install 'gedge[openvino]'",
    "nncf": "pip install 'gedge[openvino]'",
    "tensorrt": "JetPack ships it (python3-libnvinfer); on x86 install NVIDIA's tensorrt wheel",
    "tensorrt_rtx": "pip install 'gedge[tensorrt-rtx]'",
    "cuda": "pip install 'gedge[tensorrt]' (NVIDIA's cuda-python)",
    "pycuda": "pip install pycuda (needs a CUDA toolkit); cuda-python is preferred: pip install 'gedge[tensorrt]'",
    "tritonclient": "pip install 'gedge[serve]'",
    "jsonschema": "pip install 'jsonschema>=4' (in the dev extra)",
    "pytriton": "pip install 'gedge[serve]'",
    "matplotlib": "pip install 'gedge[report]'",
    "jinja2": "pip install 'gedge[report]'",
    "elpv_dataset": "pip install elpv-dataset (CC BY-NC-SA 4.0: for measurement only, never a gedge dependency)",
}


def install_hint(module: str) -> str:
    return INSTALL_HINTS.get(module.split(".")[0], f"pip install {module.split('.')[0]}")


def require(name: str, purpose: str = "") -> ModuleType:
    """Import module ``name`` (a heavy package, or a gedge module that needs one); ConfigError naming the missing
    package and how to install it when it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = exc.name or name
        if missing.startswith("gedge"):  # a bug, not a missing extra
            raise
        why = f" for {purpose}" if purpose else ""
        raise ConfigError(f"{missing} is not installed{why}: {install_hint(missing)}") from None


def load(name: str) -> tuple[ModuleType | None, str]:
    """Module ``name`` and "", or None and why it does not import (one line: an ImportError, or an OSError from a
    missing shared library); for a package that may be present in several forms (TensorRT's flavours)."""
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # ImportError, or an OSError from a missing shared library
        return None, first_line(exc, named=True)


def available(name: str) -> bool:
    """Whether module ``name`` imports here (without raising)."""
    try:
        importlib.import_module(name)
    except Exception:  # ImportError, or an OSError from a missing shared library
        return False
    return True
