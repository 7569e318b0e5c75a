"""What a measurement ran on, collected in one place: the CPU (model, the instruction-set flags that decide
which INT8 and BF16 kernels run), cores and load, the package versions, the OpenMP wait policy, the GPU.

Every benchmark prints these facts with its numbers, because a speed figure means nothing without the CPU
class: an INT8 path that runs several times faster than FP32 with AVX-512 VNNI runs at about the same speed
with AVX2 only. Versions are read from the installed distributions' metadata, so nothing heavy is imported
(torch's facts are added only where torch is already loaded). The GPU is found by cuda-python, pycuda or
nvidia-smi, whichever answers first (:func:`cuda_device`). The peak resident memory of the process
(:func:`peak_rss_bytes`) is here too.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from gedge import __version__
from gedge.core.optional import available, require

# The CPU flags (Linux /proc/cpuinfo names) that decide which kernels the CPU backends use.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
OMP_UNSET = "(unset)"


@dataclass(frozen=True)
class CudaDevice:
    """A CUDA GPU: its name and compute capability as TensorRT names it (``SM87`` for Orin)."""

    name: str
    compute_capability: str
    index: int = 0
    source: str = ""  # what found it: cuda-python, pycuda or nvidia-smi


def cuda_runtime_module() -> Any:
    """cuda-python's runtime bindings: ``cuda.bindings.runtime`` (12.6+), else the older ``cuda.cudart``."""
    if available("cuda.bindings.runtime"):
        return require("cuda.bindings.runtime", "CUDA")
    return require("cuda.cudart", "CUDA")


def _from_cuda_python(index: int) -> CudaDevice | None:
    cudart = cuda_runtime_module()
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count <= index:
        return None
    err, props = cudart.cudaGetDeviceProperties(index)
    if int(err) != 0:
        return None
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return CudaDevice(name.strip("\x00 "), f"SM{props.major}{props.minor}", index, "cuda-python")


def _from_pycuda(index: int) -> CudaDevice | None:
    cuda = require("pycuda.driver", "CUDA")
    cuda.init()
    if cuda.Device.count() <= index:
        return None
    device = cuda.Device(index)
    major, minor = device.compute_capability()
    return CudaDevice(device.name(), f"SM{major}{minor}", index, "pycuda")


def _from_nvidia_smi(index: int) -> CudaDevice | None:
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
        except Exception as exc:  # a missing package (ConfigError), a missing driver, no nvidia-smi
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


def package_version(*distributions: str) -> str | None:
    """The installed version of the first of ``distributions`` that is installed (None: none is)."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    for line in _cpuinfo():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of :data:`CPU_FLAGS` this CPU has (empty where /proc/cpuinfo cannot say)."""
    line = next((ln for ln in _cpuinfo() if ln.startswith("flags")), "")
    present = set(line.split(":", 1)[1].split()) if ":" in line else set()
    return [flag for flag in CPU_FLAGS if flag in present]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 0


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):  # not on Linux/macOS
        return None


def versions() -> dict[str, str | None]:
    """The versions of the packages a measurement depends on (None: not installed)."""
    return {"numpy": np.__version__, "torch": package_version("torch"), "onnxruntime": package_version("onnxruntime"),
            "openvino": package_version("openvino"),
            "tensorrt": package_version("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
            "tensorrt_rtx": package_version("tensorrt-rtx-cu13", "tensorrt_rtx"),
            "cuda_python": package_version("cuda-python", "cuda-bindings"), "pycuda": package_version("pycuda")}


def machine_facts(probe_gpu: bool = True) -> dict[str, Any]:
    """What the numbers were measured on (the ``machine`` of every benchmark report)."""
    facts: dict[str, Any] = {
        "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "usable_cores": usable_cores(),
        "load_average": load_average(), "platform": platform.platform(), "machine": platform.machine(),
        "python": platform.python_version(), "gedge": __version__, **versions(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", OMP_UNSET), "gpu": None,
    }
    if probe_gpu:
        device, why = cuda_device()
        facts["gpu"] = f"{device.name} ({device.compute_capability})" if device else None
        if device is None:
            facts["gpu_note"] = why
    if "torch" in sys.modules and sys.modules["torch"] is not None:  # only if loaded: importing it costs seconds
        torch = sys.modules["torch"]
        facts["torch_threads"] = torch.get_num_threads()
        facts["torch_cuda"] = bool(torch.cuda.is_available())
    return facts


def cpu_line(facts: dict[str, Any]) -> str:
    """The CPU in one line, flags included: what every benchmark prints with its numbers."""
    flags = ", ".join(facts.get("cpu_flags") or []) or "none of " + "/".join(CPU_FLAGS)
    return (f"{facts.get('cpu') or '?'} ({flags}), {facts.get('usable_cores')} of {facts.get('cores')} cores, "
            f"load {facts.get('load_average')}")
