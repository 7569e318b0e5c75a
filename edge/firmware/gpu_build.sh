#!/usr/bin/env bash
# Build the firmware runtime linked against this machine's TensorRT and CUDA (for `make gpu-check`), into
# build/firmware/gpu; prints the path of gedge-score on its last line.
# Exit 0: built. Exit 3: cannot be built here, the reason on the last line (a skip, not a failure). Exit 1: failed.
#
# TensorRT: headers and libnvinfer from TENSORRT_ROOT, the system (JetPack, Debian packages), or the pip wheels
# (`tensorrt` with `tensorrt_libs/libnvinfer.so.N`; their headers are not in the wheel, so the Apache-2.0 headers in
# ../shared/third_party/tensorrt-headers of the same major version are used). CUDA: a CUDA toolkit (CMake's
# FindCUDAToolkit: nvcc on PATH, CUDAToolkit_ROOT or /usr/local/cuda).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
BUILD="$ROOT/build/firmware"
OUT="$BUILD/gpu"
JOBS="${GEDGE_JOBS:-2}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

skip() {
    echo "skip: $*"
    exit 3
}
say() { echo "gpu_build: $*"; }

command -v cmake >/dev/null 2>&1 || skip "no cmake"
command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || skip "no C++ compiler"
# shellcheck source=edge/firmware/deps.sh
source edge/firmware/deps.sh
firmware_deps

# --- TensorRT headers and library -------------------------------------------------------------------------------
TRT_INCLUDE=""
TRT_LIBRARY=""
for dir in "${TENSORRT_ROOT:-/nonexistent}/include" /usr/include/aarch64-linux-gnu /usr/include/x86_64-linux-gnu \
    /usr/include /usr/local/tensorrt/include; do
    if [ -f "$dir/NvInferRuntime.h" ]; then
        TRT_INCLUDE="$dir"
        break
    fi
done
for lib in "${TENSORRT_ROOT:-/nonexistent}/lib/libnvinfer.so" /usr/lib/aarch64-linux-gnu/libnvinfer.so \
    /usr/lib/x86_64-linux-gnu/libnvinfer.so /usr/local/tensorrt/lib/libnvinfer.so; do
    if [ -e "$lib" ]; then
        TRT_LIBRARY="$lib"
        break
    fi
done
if [ -z "$TRT_LIBRARY" ]; then  # the pip wheels: tensorrt_libs/libnvinfer.so.<major>
    TRT_LIBRARY="$("$PY" - <<'EOF' 2>/dev/null
import glob, os
try:
    import tensorrt_libs
except ImportError:
    raise SystemExit(0)
found = sorted(glob.glob(os.path.join(os.path.dirname(tensorrt_libs.__file__), "libnvinfer.so.*")))
print(min(found, key=len) if found else "")
EOF
)"
fi
[ -n "$TRT_LIBRARY" ] || skip "no libnvinfer (TensorRT) on this machine"
if [ -z "$TRT_INCLUDE" ]; then
    major="$("$PY" -c 'import tensorrt; print(tensorrt.__version__.split(".")[0])' 2>/dev/null || true)"
    case "$major" in
        10) TRT_INCLUDE="$ROOT/../shared/third_party/tensorrt-headers/10.3/include" ;;
        11) TRT_INCLUDE="$ROOT/../shared/third_party/tensorrt-headers/11.1/include" ;;
    esac
    [ -n "$TRT_INCLUDE" ] && [ -f "$TRT_INCLUDE/NvInferRuntime.h" ] ||
        skip "libnvinfer found ($TRT_LIBRARY) but no TensorRT headers for its version (${major:-unknown})"
    say "TensorRT headers from $TRT_INCLUDE for the installed TensorRT $major.x"
fi

# --- CUDA toolkit -------------------------------------------------------------------------------------------------
CUDA_ARGS=()
if [ -z "${CUDAToolkit_ROOT:-}" ] && ! command -v nvcc >/dev/null 2>&1; then
    [ -f /usr/local/cuda/include/cuda_runtime_api.h ] || skip "no CUDA toolkit (cuda_runtime_api.h and libcudart)"
    CUDA_ARGS=(-DCUDAToolkit_ROOT=/usr/local/cuda)
fi

say "TensorRT $TRT_INCLUDE + $TRT_LIBRARY; building into build/firmware/gpu"
if ! cmake -S edge/firmware -B "$OUT" -DCMAKE_BUILD_TYPE=Release -DGEDGE_LINK_TENSORRT=ON \
    -DGEDGE_TENSORRT_INCLUDE_DIR="$TRT_INCLUDE" -DGEDGE_NVINFER_LIBRARY="$TRT_LIBRARY" \
    -DGEDGE_VALIJSON_INCLUDE_DIR="$VALIJSON_INCLUDE" "${CUDA_ARGS[@]}" >"$OUT.configure.log" 2>&1; then
    tail -n 30 "$OUT.configure.log"
    echo "configure failed (build/firmware/gpu.configure.log)"
    exit 1
fi
if ! cmake --build "$OUT" -j "$JOBS" >"$OUT.build.log" 2>&1; then
    grep -E "error|Error" -A5 "$OUT.build.log" | head -n 60
    echo "build failed (build/firmware/gpu.build.log)"
    exit 1
fi
echo "$OUT/gedge-score"
