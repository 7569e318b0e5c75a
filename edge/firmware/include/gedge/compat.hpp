// Whether an engine may be loaded here: the checks of gedge's Python verify_engine (export/manifest.py), with the
// same messages: the bytes against the recorded sha256, the TensorRT flavour and version, the GPU; then the
// recorded parity verdict.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "gedge/manifest.hpp"
#include "gedge/status.hpp"

namespace gedge {

// The TensorRT and GPU an engine is about to be loaded with.
struct RuntimeInfo {
    std::string flavour = "tensorrt";  // this library links classic TensorRT (libnvinfer)
    std::string version;               // "10.3.0", from getInferLibVersion()
    std::string gpu_name;              // from cudaGetDeviceProperties
    std::string compute_capability;    // "SM87"
};

// getInferLibVersion()'s number as "major.minor.patch": 8.x encodes major*1000 + minor*100 + patch (8601),
// 10 and later (major*100 + minor)*100 + patch (100300).
std::string tensorrt_version_string(int32_t encoded);

// Whether two version strings name the same release: major.minor.patch compared as numbers; a build number
// ("10.3.0.26", what Python's tensorrt.__version__ says) is ignored because getInferLibVersion() has none.
bool same_tensorrt_version(const std::string& built, const std::string& runtime);

// "SM87" for compute capability 8.7, the form TensorRT and the manifest use.
std::string compute_capability_name(int major, int minor);

// "" when the engine's target covers this GPU, else what differs (Python's _target_allows).
std::string target_problem(const Target& target, const RuntimeInfo& runtime);

// sha256 of the bytes about to be deserialised, then flavour, version and GPU. Code::mismatch on any difference.
Status verify_engine(const Manifest& manifest, const void* engine, size_t size, const RuntimeInfo& runtime,
                     const std::string& engine_path);

// The rule gedge's Python reader applies (gedge.core.artifacts.verdicts.parity_verdicts), tested on the same table
// (tests/fixtures/manifests): failed parity of the engine (parity.engine) or of the graph it was built from
// (parity.graph) is Code::parity unless allowed; otherwise engine parity "pending", "not measured" or "error" is a
// warning, and so is a non-empty `forced` list. `warning` is "" when there is nothing to say.
Status check_parity(const Manifest& manifest, bool allow_failed, const std::string& engine_path, std::string& warning);

}  // namespace gedge
