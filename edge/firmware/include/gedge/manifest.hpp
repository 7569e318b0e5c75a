// The engine manifest (<engine>.json, format_version 2): read, checked against docs/schemas, and the facts the
// runtime uses, typed. What the manifest means is documented in docs/schemas/engine-manifest.schema.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gedge/status.hpp"

namespace gedge {

inline constexpr const char* kManifestFormat = "gedge-engine";
inline constexpr int kManifestFormatVersion = 2;

struct Target {
    std::string kind;                     // "gpu" (classic TensorRT) or "aot" (TensorRT-RTX)
    std::string gpu_name;                 // kind gpu: the GPU that built it ("" when unknown)
    std::string compute_capability;       // kind gpu: "SM87" ("" when unknown)
    std::vector<std::string> compute_capabilities;  // kind aot
};

struct Decision {
    std::string primary;     // the residual score behind `score`
    double mean = 0.0;       // `score` = (primary - mean) / std
    double std = 1.0;
    double threshold = 0.0;  // score >= threshold rejects
};

struct Preprocess {
    bool present = false;   // older or foreign manifests may lack it; frame tiling then is refused
    std::string mode;       // "patch" or "resize"
    int isize = 0;
    int channels = 0;
    double scale = 1.0;
    int stride = 0;         // 0: isize / 2
    int tile_stride() const { return stride > 0 ? stride : (isize / 2 > 0 ? isize / 2 : 1); }
};

struct Manifest {
    std::string path;  // where it was read from (for messages)
    int format_version = 0;
    std::string engine_sha256;
    std::string tensorrt_flavour;  // "tensorrt" or "tensorrt_rtx"
    std::string tensorrt_version;  // as the Python module reported it, e.g. "10.3.0" or "10.3.0.26"
    Target target;
    std::string precision;
    std::string input_name;
    std::string input_dtype;             // "uint8" or "float32"
    std::string input_layout;            // "NHWC" or "NCHW"
    std::vector<int64_t> input_shape;    // 4 dims, -1 for the batch
    std::vector<int64_t> profile_min, profile_opt, profile_max;
    std::vector<std::string> outputs;
    Decision decision;
    double threshold = 0.0;        // the flat copy; equals decision.threshold
    std::string primary_score;     // the flat copy; equals decision.primary
    Preprocess preprocess;
    std::string parity_status;     // parity.engine.status
    std::string parity_reason;
    std::string graph_parity_status;  // parity.graph.status ("" when the manifest records none)
    std::string graph_parity_reason;
    std::vector<std::string> forced;
};

// The manifest path of an engine: "scorer.fp16.engine" -> "scorer.fp16.engine.json".
std::string manifest_path(const std::string& engine_path);

// Parse and check manifest text (`path` only names it in messages): JSON, the schema (where built with a validator),
// then the typed facts and their consistency (flat copies, input shape against the profile).
Status parse_manifest(const std::string& text, const std::string& path, Manifest& out);

// Read <engine>.json and parse it.
Status read_manifest(const std::string& engine_path, Manifest& out);

// Whether this build validates manifests against the schema (valijson found at build time). Without it the
// typed checks of parse_manifest (the fields and types the runtime uses) are the only ones.
bool schema_validator_available();

}  // namespace gedge
