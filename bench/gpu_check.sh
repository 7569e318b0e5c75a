#!/usr/bin/env bash
# GPU check for a machine with a GPU (`make gpu-check`, i.e. `gedge gpu-check` under a hard time limit): torch
# CUDA vs CPU parity, cuda-python buffers, streams and graph capture, the pipelined loop on the GPU, and where
# TensorRT is installed FP32/FP16/INT8 engines with parity and a benchmark. Under five minutes; one-screen
# summary; exit code 1 when a step fails. Without an NVIDIA GPU the CUDA steps are skipped with the reason.
# Usage: bench/gpu_check.sh [--model model.pt] [--budget 280] [--out DIR] [--build-without-gpu] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
# The C++ firmware runtime linked against this machine's TensorRT, built before the timed check so compile time does
# not eat its budget (prints why it cannot be built where there is no TensorRT, CUDA toolkit or compiler).
PYTHON="$PY" GEDGE_JOBS="${GEDGE_JOBS:-$(nproc)}" bash edge/firmware/gpu_build.sh || true
exec timeout --signal=INT --kill-after=15 300 "$PY" -m gedge.cli gpu-check "$@"
