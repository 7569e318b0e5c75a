#!/usr/bin/env bash
# `make firmware-check`: compile the firmware runtime against TensorRT 10.3 and 11.1 headers with
# -Wall -Wextra -Werror, run its unit tests (stand-ins for TensorRT/CUDA, no GPU), check find_package(gedge)
# after `cmake --install`, and say what could not run here. A missing C++ compiler or CMake is a skip (exit 0)
# with the reason; a compile error or a failing test is exit 1.
#
# What it fetches (all under build/firmware/, nothing in the repository):
#   * nlohmann-json3-dev (and libssl-dev, libpng-dev where missing): `apt-get install` when run as root;
#   * valijson's headers: `apt-get download libvalijson-dev`, unpacked into build/firmware/deps (the package's
#     dependencies are for its other JSON adapters and are not installed);
#   * CUDA 13 runtime headers: the nvidia-cuda-runtime and nvidia-cuda-crt wheels, `pip install --target`.
# TensorRT headers: ../shared/third_party/tensorrt-headers/{10.3,11.1}/include, by path (never copied).
# GEDGE_SKIP_FIRMWARE=1 skips it; GEDGE_JOBS sets the build parallelism (default 2).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
BUILD="$ROOT/build/firmware"
HEADERS="$ROOT/../shared/third_party/tensorrt-headers"
CUDA_WHEELS_VERSION="13.5.37"
CUDA_HEADERS="$BUILD/cuda-headers"
JOBS="${GEDGE_JOBS:-2}"

skip() {
    echo "firmware-check: skipped: $*"
    exit 0
}
say() { echo "firmware-check: $*"; }

[ "${GEDGE_SKIP_FIRMWARE:-0}" = "1" ] && skip "GEDGE_SKIP_FIRMWARE=1"
command -v cmake >/dev/null 2>&1 || skip "no cmake on this machine (apt-get install cmake)"
CXX_BIN="$(command -v g++ || command -v c++ || true)"
[ -n "$CXX_BIN" ] || skip "no C++ compiler on this machine (apt-get install g++)"
[ -d "$HEADERS/10.3/include" ] && [ -d "$HEADERS/11.1/include" ] ||
    skip "TensorRT headers not found at ../shared/third_party/tensorrt-headers (10.3 and 11.1)"

# --- nlohmann/json, OpenSSL, libpng, valijson (deps.sh) -------------------------------------------------------
# shellcheck source=edge/firmware/deps.sh
source edge/firmware/deps.sh
firmware_deps

# --- CUDA 13 runtime headers from PyPI wheels ------------------------------------------------------------------
CUDA_INCLUDE="$CUDA_HEADERS/nvidia/cu13/include"
if [ ! -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || [ ! -f "$CUDA_INCLUDE/crt/host_defines.h" ]; then
    PY="$ROOT/.venv/bin/python"
    [ -x "$PY" ] || PY="$(command -v python3 || true)"
    [ -n "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1 || skip "no python3 with pip to fetch the CUDA headers wheels"
    say "fetching CUDA $CUDA_WHEELS_VERSION runtime headers (nvidia-cuda-runtime, nvidia-cuda-crt wheels)" \
        "into build/firmware/cuda-headers"
    rm -rf "$CUDA_HEADERS"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install --quiet --no-deps --target "$CUDA_HEADERS" \
        "nvidia-cuda-runtime==$CUDA_WHEELS_VERSION" "nvidia-cuda-crt==$CUDA_WHEELS_VERSION" 2>&1 |
        grep -v "^WARNING" || true
    [ -f "$CUDA_INCLUDE/crt/host_defines.h" ] || skip "the CUDA headers wheels could not be installed (pip; see above)"
fi

# --- build and test per TensorRT header set --------------------------------------------------------------------
GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)
FAILED=0
TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()
for version in 10.3 11.1; do
    dir="$BUILD/trt-$version"
    say "TensorRT $version headers: configure, build (-Wall -Wextra -Werror), unit tests"
    # A build folder configured with another generator (Ninja appeared or went) is started afresh.
    if [ -f "$dir/CMakeCache.txt" ] &&
        ! grep -q "CMAKE_GENERATOR:INTERNAL=${GENERATOR[1]:-Unix Makefiles}" "$dir/CMakeCache.txt"; then
        rm -rf "$dir"
    fi
    if ! cmake -S edge/firmware -B "$dir" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$CXX_BIN" \
        -DGEDGE_LINK_TENSORRT=OFF -DGEDGE_BUILD_TESTS=ON -DGEDGE_WARNINGS_AS_ERRORS=ON \
        -DGEDGE_TENSORRT_INCLUDE_DIR="$HEADERS/$version/include" -DGEDGE_CUDA_INCLUDE_DIR="$CUDA_INCLUDE" \
        -DGEDGE_VALIJSON_INCLUDE_DIR="$VALIJSON_INCLUDE" -DCMAKE_INSTALL_PREFIX="$BUILD/install-$version" \
        >"$dir.configure.log" 2>&1; then
        cat "$dir.configure.log"
        SUMMARY+=("TensorRT $version headers: configure FAILED")
        FAILED=1
        continue
    fi
    if ! cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1; then
        grep -E "error|Error" -A5 "$dir.build.log" | head -n 80
        SUMMARY+=("TensorRT $version headers: build FAILED (log: build/firmware/trt-$version.build.log)")
        FAILED=1
        continue
    fi
    "$dir/gedge_tests" >"$dir.tests.log" 2>&1
    test_status=$?
    grep -v "^\[ ok \]" "$dir.tests.log"
    counts="$(tail -n 1 "$dir.tests.log")"
    if [[ "$counts" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        TOTAL_PASSED=$((TOTAL_PASSED + BASH_REMATCH[1]))
        TOTAL_FAILED=$((TOTAL_FAILED + BASH_REMATCH[2]))
    else
        counts="the test binary stopped early (exit $test_status)"
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fi
    [ "$test_status" = "0" ] || FAILED=1
    SUMMARY+=("TensorRT $version headers: library, tests, gedge-score compiled warning-free; unit tests $counts")

    # find_package(gedge) from an installed tree: a small C project compiled against it.
    if [ "$version" = "10.3" ]; then
        consumer="$BUILD/consumer"
        if cmake --install "$dir" >"$dir.install.log" 2>&1 &&
            cmake -S edge/firmware/tests/consumer -B "$consumer" "${GENERATOR[@]}" \
                -DCMAKE_PREFIX_PATH="$BUILD/install-$version" >"$consumer.log" 2>&1 &&
            cmake --build "$consumer" >>"$consumer.log" 2>&1; then
            SUMMARY+=("cmake --install + find_package(gedge): the README's C example compiled against the install")
        else
            cat "$dir.install.log" "$consumer.log" 2>/dev/null | tail -n 30
            SUMMARY+=("cmake --install + find_package(gedge): FAILED")
            FAILED=1
        fi
    fi
done

echo
echo "firmware-check summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "  manifest schema validation in C++: $VALIJSON_NOTE"
echo "  not run here: linking libnvinfer/libcudart and running an engine on a GPU (no TensorRT library and no GPU"
echo "    on this machine); \`make gpu-check\` compares gedge-score with \`gedge score\` where both exist, and"
echo "    Dockerfile.jetson builds the linked library on JetPack"
echo "firmware: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$FAILED"
