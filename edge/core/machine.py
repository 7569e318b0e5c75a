"""TODO: docstring (split from gedge.export.tensorrt_compat, gedge.bench.runner, gedge.bench.cpu_speed)."""

from __future__ import annotations

import os
import platform
import resource
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CudaDevice:
    """A CUDA GPU: its name and compute capability as TensorRT names it (``SM87`` for Orin)."""

    name: str
    compute_capability: str
    index: int = 0
    source: str = ""  # what found it: cuda-python, pycuda or nvidia-smi


def _from_cuda_python(index: int) -> CudaDevice | None:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python 12.6+
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count <= index:
        return None
    err, props = cudart.cudaGetDeviceProperties(index)
    if int(err) != 0:
        return None
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return CudaDevice(name.strip("\x00 "), f"SM{props.major}{props.minor}", index, "cuda-python")


def _from_pycuda(index: int) -> CudaDevice | None:
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Device.count() <= index:
        return None
    device = cuda.Device(index)
    major, minor = device.compute_capability()
    return CudaDevice(device.name(), f"SM{major}{minor}", index, "pycuda")


def _from_nvidia_smi(index: int) -> CudaDevice | None:
    import subprocess

    result = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=name,compute_cap",
                             "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    if result.returncode != 0 or "," not in result.stdout:
        return None
    name, cap = (part.strip() for part in result.stdout.strip().splitlines()[0].rsplit(",", 1))
    return CudaDevice(name, "SM" + cap.replace(".", ""), index, "nvidia-smi")


def cuda_device(index: int = 0) -> tuple[CudaDevice | None, str]:
    """This machine's GPU ``index`` (cuda-python first, as TensorRT's samples use it; then pycuda, then
    nvidia-smi), or None and why not."""
    reasons = []
    for probe in (_from_cuda_python, _from_pycuda, _from_nvidia_smi):
        try:
            device = probe(index)
        except Exception as exc:  # ImportError, a missing driver, no nvidia-smi
            reasons.append(f"{probe.__name__.removeprefix('_from_')}: {exc.__class__.__name__}")
            continue
        if device is not None:
            return device, ""
        reasons.append(f"{probe.__name__.removeprefix('_from_')}: no GPU {index}")
    return None, "no CUDA GPU found (" + "; ".join(reasons) + ")"


def _vm_value(key: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs`` 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    peak = _vm_value("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(probe_gpu: bool = True) -> dict[str, Any]:
    """What the numbers were measured on."""
    from gedge import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    facts: dict[str, Any] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(), "python": platform.python_version(), "gedge": __version__,
        "numpy": np.__version__, "torch": _version("torch"), "onnxruntime": _version("onnxruntime"),
        "openvino": _version("openvino"),
        "tensorrt": _version("tensorrt") or _version("tensorrt-cu12") or _version("tensorrt-cu13"),
        "tensorrt_rtx": _version("tensorrt-rtx-cu13") or _version("tensorrt_rtx"),
        "cuda_python": _version("cuda-python") or _version("cuda-bindings"), "pycuda": _version("pycuda"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "gpu": None,
    }
    if probe_gpu:
        from gedge.core.machine import cuda_device

        device, why = cuda_device()
        facts["gpu"] = f"{device.name} ({device.compute_capability})" if device else None
        if device is None:
            facts["gpu_note"] = why
    if "torch" in sys.modules:  # only if already imported: importing it would cost seconds
        torch = sys.modules["torch"]
        facts["torch_threads"] = torch.get_num_threads()
        facts["torch_cuda"] = bool(torch.cuda.is_available())
    return facts


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return []
