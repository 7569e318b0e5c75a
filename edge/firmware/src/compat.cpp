#include "gedge/compat.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "gedge/sha256.hpp"

namespace gedge {
namespace {

const char* kRebuild = "rebuild it with `gedge build` on this machine";

// Leading numeric components of "10.3.0.26" -> {10, 3, 0, 26}; stops at the first non-numeric one.
std::vector<long> numeric_parts(const std::string& version) {
    std::vector<long> parts;
    size_t at = 0;
    while (at < version.size() && std::isdigit(static_cast<unsigned char>(version[at]))) {
        size_t end = at;
        long value = 0;
        while (end < version.size() && std::isdigit(static_cast<unsigned char>(version[end])) && value < 100000000)
            value = value * 10 + (version[end++] - '0');
        parts.push_back(value);
        if (end >= version.size() || version[end] != '.') break;
        at = end + 1;
    }
    return parts;
}

std::string upper(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
    return text;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) out += (out.empty() ? "" : ", ") + upper(item);
    return out;
}

}  // namespace

std::string tensorrt_version_string(int32_t encoded) {
    if (encoded <= 0) return "unknown";
    int32_t major, minor, patch;
    if (encoded >= 100000) {  // 10.0 and later: (major * 100 + minor) * 100 + patch
        major = encoded / 10000;
        minor = (encoded / 100) % 100;
    } else {                  // 8.x: major * 1000 + minor * 100 + patch
        major = encoded / 1000;
        minor = (encoded / 100) % 10;
    }
    patch = encoded % 100;
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

bool same_tensorrt_version(const std::string& built, const std::string& runtime) {
    std::vector<long> a = numeric_parts(built), b = numeric_parts(runtime);
    if (a.size() < 2 || b.size() < 2) return false;  // not a version: never "the same"
    a.resize(3, 0);
    b.resize(3, 0);
    return std::equal(a.begin(), a.begin() + 3, b.begin());
}

std::string compute_capability_name(int major, int minor) {
    return "SM" + std::to_string(major) + std::to_string(minor);
}

std::string target_problem(const Target& target, const RuntimeInfo& runtime) {
    const std::string cc = upper(runtime.compute_capability);
    // TensorRT-RTX (built ahead of time for a list of compute capabilities): this runtime refuses its flavour
    // before the target is looked at; the list is still compared so the function says the same as Python's.
    if (target.kind == "aot") {
        std::vector<std::string> listed;
        for (const std::string& item : target.compute_capabilities) listed.push_back(upper(item));
        if (listed.empty() || cc.empty() || std::find(listed.begin(), listed.end(), cc) != listed.end()) return "";
        return "the engine was built for " + joined(listed) + " but this GPU is " + cc;
    }
    const std::string built_cc = upper(target.compute_capability);
    const std::string& built_name = target.gpu_name;
    if (!cc.empty() && !built_cc.empty() && cc != built_cc)
        return "the engine was built on " + (built_name.empty() ? std::string("a GPU") : built_name) + " (" + built_cc +
               ") but this GPU is " + runtime.gpu_name + " (" + cc + ")";
    if (!runtime.gpu_name.empty() && !built_name.empty() && runtime.gpu_name != built_name)
        return "the engine was built on " + built_name + " but this GPU is " + runtime.gpu_name;
    return "";
}

Status verify_engine(const Manifest& manifest, const void* engine, size_t size, const RuntimeInfo& runtime,
                     const std::string& engine_path) {
    std::string digest;
    Status hashed = sha256_hex(engine, size, digest);
    if (!hashed.ok()) return hashed;
    if (digest != manifest.engine_sha256)
        return fail(Code::mismatch, engine_path,
                    "engine does not match its manifest (sha256 differs: replaced, modified or truncated?)");
    const std::string& flavour = manifest.tensorrt_flavour;
    const std::string& version = manifest.tensorrt_version;
    if (flavour != runtime.flavour)
        return fail(Code::mismatch, engine_path,
                    "engine was built with " + flavour + " " + version + " but this runtime is " + runtime.flavour + " " +
                        runtime.version + "; " + kRebuild);
    if (!same_tensorrt_version(version, runtime.version))
        return fail(Code::mismatch, engine_path,
                    "engine was built with " + flavour + " " + version + " but this runtime is " + runtime.version +
                        " (engines load only on the TensorRT version that built them); " + kRebuild);
    std::string problem = target_problem(manifest.target, runtime);
    if (!problem.empty()) return fail(Code::mismatch, engine_path, problem + "; " + kRebuild);
    return Status();
}

Status check_parity(const Manifest& manifest, bool allow_failed, const std::string& engine_path, std::string& warning) {
    warning.clear();
    const std::pair<std::string, std::pair<std::string, std::string>> verdicts[] = {
        {"engine", {manifest.parity_status, manifest.parity_reason}},
        {"graph", {manifest.graph_parity_status, manifest.graph_parity_reason}}};
    std::string failed;  // "engine parity FAILED (why)", and the graph's
    for (const auto& [kind, verdict] : verdicts) {
        if (verdict.first != "failed") continue;
        const std::string why = verdict.second.empty() ? "" : " (" + verdict.second + ")";
        failed += (failed.empty() ? "" : "; ") + kind + " parity FAILED" + why;
    }
    if (!failed.empty()) {
        if (!allow_failed)
            return fail(Code::parity, engine_path,
                        "the manifest records " + failed +
                            " against the PyTorch reference; rebuild it, or open it with "
                            "GEDGE_OPEN_ALLOW_FAILED_PARITY to run it anyway");
        warning = failed + "; opened because GEDGE_OPEN_ALLOW_FAILED_PARITY was given";
    } else if (manifest.parity_status != "passed") {
        const std::string why = manifest.parity_reason.empty() ? "" : " (" + manifest.parity_reason + ")";
        warning = "engine parity " + manifest.parity_status + why;
    }
    if (!manifest.forced.empty()) {
        std::string list;
        for (const std::string& item : manifest.forced) list += (list.empty() ? "" : "; ") + item;
        warning += (warning.empty() ? "" : "; ") + std::string("built with --force over: ") + list;
    }
    return Status();
}

}  // namespace gedge
