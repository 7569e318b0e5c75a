// Reading an engine manifest: JSON (nlohmann/json), the schema, then the typed facts the runtime depends on. The
// typed checks run whether or not the build has a schema validator, so a build without one still refuses a
// manifest whose runtime-relevant fields are missing or of the wrong type.
#include "gedge/manifest.hpp"

#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "schema.hpp"

namespace gedge {
namespace {

using nlohmann::json;

// Typed access by JSON pointer ("/tensorrt/version"); the first problem is kept and later reads return defaults.
class Fields {
public:
    Fields(const json& root, const std::string& path) : root_(root), path_(path) {}

    const Status& status() const { return status_; }

    const json* find(const char* pointer, bool required = true) {
        if (!status_.ok()) return nullptr;
        json::json_pointer where(pointer);
        if (!root_.contains(where)) {
            if (required) problem(pointer, "is missing");
            return nullptr;
        }
        return &root_.at(where);
    }

    std::string text(const char* pointer, bool required = true) {
        const json* value = find(pointer, required);
        if (!value) return "";
        if (!value->is_string()) return problem(pointer, "must be a string"), "";
        return value->get<std::string>();
    }

    double number(const char* pointer) {
        const json* value = find(pointer);
        if (!value) return 0.0;
        if (!value->is_number()) return problem(pointer, "must be a number"), 0.0;
        return value->get<double>();
    }

    int64_t integer(const char* pointer, bool required = true, int64_t fallback = 0) {
        const json* value = find(pointer, required);
        if (!value) return fallback;
        if (!value->is_number_integer()) return problem(pointer, "must be an integer"), fallback;
        return value->get<int64_t>();
    }

    std::vector<int64_t> integers(const char* pointer) {
        std::vector<int64_t> out;
        const json* value = find(pointer);
        if (!value) return out;
        if (!value->is_array()) return problem(pointer, "must be a list of integers"), out;
        for (const json& item : *value) {
            if (!item.is_number_integer()) return problem(pointer, "must be a list of integers"), out;
            out.push_back(item.get<int64_t>());
        }
        return out;
    }

    std::vector<std::string> texts(const char* pointer, bool required = true) {
        std::vector<std::string> out;
        const json* value = find(pointer, required);
        if (!value) return out;
        if (!value->is_array()) return problem(pointer, "must be a list of strings"), out;
        for (const json& item : *value) {
            if (!item.is_string()) return problem(pointer, "must be a list of strings"), out;
            out.push_back(item.get<std::string>());
        }
        return out;
    }

    void problem(const char* pointer, const std::string& what) {
        if (status_.ok())
            status_ = fail(Code::manifest, path_, std::string("manifest field ") + (pointer + 1) + " " + what);
    }

private:
    const json& root_;
    std::string path_;
    Status status_;
};

bool one_of(const std::string& value, std::initializer_list<const char*> allowed) {
    for (const char* item : allowed)
        if (value == item) return true;
    return false;
}

Status read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(Code::io, path, "cannot be read");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) return fail(Code::io, path, "read failed");
    out = buffer.str();
    return Status();
}

void read_facts(Fields& f, Manifest& m) {
    m.engine_sha256 = f.text("/engine_sha256");
    m.tensorrt_flavour = f.text("/tensorrt/flavour");
    m.tensorrt_version = f.text("/tensorrt/version");
    m.target.kind = f.text("/target/kind");
    if (m.target.kind == "gpu") {
        m.target.gpu_name = f.text("/target/gpu_name");
        m.target.compute_capability = f.text("/target/compute_capability");
    } else {
        m.target.compute_capabilities = f.texts("/target/compute_capabilities", false);
    }
    m.precision = f.text("/precision");
    m.input_name = f.text("/input/name");
    m.input_dtype = f.text("/input/dtype");
    m.input_layout = f.text("/input/layout");
    m.input_shape = f.integers("/input/shape");
    m.profile_min = f.integers("/profile/min");
    m.profile_opt = f.integers("/profile/opt");
    m.profile_max = f.integers("/profile/max");
    m.outputs = f.texts("/outputs");
    m.decision.primary = f.text("/decision/primary");
    m.decision.mean = f.number("/decision/mean");
    m.decision.std = f.number("/decision/std");
    m.decision.threshold = f.number("/decision/threshold");
    m.threshold = f.number("/threshold");
    m.primary_score = f.text("/primary_score", false);
    if (f.find("/preprocess", false)) {
        m.preprocess.present = true;
        m.preprocess.mode = f.text("/preprocess/mode");
        m.preprocess.isize = static_cast<int>(f.integer("/preprocess/isize"));
        m.preprocess.channels = static_cast<int>(f.integer("/preprocess/channels"));
        const json* scale = f.find("/preprocess/scale", false);
        m.preprocess.scale = scale ? f.number("/preprocess/scale") : 1.0;
        m.preprocess.stride = static_cast<int>(f.integer("/preprocess/stride", false, 0));
    }
    m.parity_status = f.text("/parity/engine/status");
    m.parity_reason = f.text("/parity/engine/reason", false);
    if (f.find("/parity/graph", false)) {
        m.graph_parity_status = f.text("/parity/graph/status");
        m.graph_parity_reason = f.text("/parity/graph/reason", false);
    }
    m.forced = f.texts("/forced", false);
}

// What the types alone do not say: allowed values, and the facts that must agree with each other.
Status check_facts(const Manifest& m, const std::string& path) {
    auto bad = [&](const std::string& what) { return fail(Code::manifest, path, "manifest " + what); };
    if (m.engine_sha256.size() != 64 || m.engine_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
        return bad("field engine_sha256 must be 64 lowercase hex digits");
    if (!one_of(m.tensorrt_flavour, {"tensorrt", "tensorrt_rtx"}))
        return bad("field tensorrt/flavour must be tensorrt or tensorrt_rtx, got " + m.tensorrt_flavour);
    if (!one_of(m.target.kind, {"gpu", "aot"})) return bad("field target/kind must be gpu or aot, got " + m.target.kind);
    if (!one_of(m.precision, {"fp32", "fp16", "int8"}))
        return bad("field precision must be fp32, fp16 or int8, got " + m.precision);
    if (!one_of(m.input_dtype, {"uint8", "float32"}))
        return bad("field input/dtype must be uint8 or float32, got " + m.input_dtype);
    if (m.input_shape.size() != 4) return bad("field input/shape must have 4 dimensions");
    const std::pair<const char*, const std::vector<int64_t>*> profile[] = {
        {"min", &m.profile_min}, {"opt", &m.profile_opt}, {"max", &m.profile_max}};
    for (const auto& [name, shape] : profile) {
        const std::string field = std::string("field profile/") + name;
        if (shape->size() != 4) return bad(field + " must have 4 dimensions");
        for (int64_t d : *shape)
            if (d < 1) return bad(field + " must be positive");
        for (size_t i = 1; i < 4; ++i)
            if ((*shape)[i] != m.input_shape[i])
                return bad(field + ": profile shapes differ from input/shape beyond the batch");
    }
    if (m.profile_min[0] > m.profile_max[0]) return bad("profile min batch is larger than its max batch");
    bool has_score = false;
    for (const std::string& name : m.outputs) has_score = has_score || name == "score";
    if (!has_score) return bad("field outputs has no `score` output (the threshold applies to it)");
    if (!(m.decision.std > 0)) return bad("field decision/std must be positive");
    if (m.threshold != m.decision.threshold) return bad("threshold differs from decision/threshold");
    if (!m.primary_score.empty() && m.primary_score != m.decision.primary)
        return bad("primary_score differs from decision/primary");
    if (!one_of(m.parity_status, {"passed", "failed", "pending", "not measured", "error"}))
        return bad("field parity/engine/status is not one of passed, failed, pending, not measured, error");
    if (!m.graph_parity_status.empty() &&
        !one_of(m.graph_parity_status, {"passed", "failed", "pending", "not measured", "error"}))
        return bad("field parity/graph/status is not one of passed, failed, pending, not measured, error");
    if (m.preprocess.present) {
        if (!one_of(m.preprocess.mode, {"patch", "resize"})) return bad("field preprocess/mode must be patch or resize");
        if (m.preprocess.isize < 1 || !(m.preprocess.scale > 0)) return bad("field preprocess has a bad size or scale");
    }
    return Status();
}

Status parse_document(const std::string& text, const std::string& path, Manifest& out) {
    json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) return fail(Code::manifest, path, "manifest does not parse (not JSON)");
    if (!document.is_object() || !document.contains("format") || document["format"] != kManifestFormat)
        return fail(Code::manifest, path, "not a gedge engine manifest");
    if (!document.contains("format_version") || document["format_version"] != kManifestFormatVersion)
        return fail(Code::manifest, path,
                    "manifest format version " + (document.contains("format_version") ? document["format_version"].dump()
                                                                                        : std::string("missing")) +
                        "; this runtime reads " + std::to_string(kManifestFormatVersion) +
                        " (rebuild the engine with a gedge that writes it)");
    Status valid = detail::validate_engine_schema(document, path);
    if (!valid.ok()) return valid;
    Manifest manifest;
    manifest.path = path;
    manifest.format_version = kManifestFormatVersion;
    Fields fields(document, path);
    read_facts(fields, manifest);
    if (!fields.status().ok()) return fields.status();
    Status consistent = check_facts(manifest, path);
    if (!consistent.ok()) return consistent;
    out = std::move(manifest);
    return Status();
}

}  // namespace

std::string manifest_path(const std::string& engine_path) { return engine_path + ".json"; }

Status parse_manifest(const std::string& text, const std::string& path, Manifest& out) {
    try {
        return parse_document(text, path, out);
    } catch (const std::exception& exc) {  // nlohmann reports odd input (e.g. invalid UTF-8) by throwing
        return fail(Code::manifest, path, std::string("manifest cannot be read: ") + exc.what());
    }
}


Status read_manifest(const std::string& engine_path, Manifest& out) {
    const std::string path = manifest_path(engine_path);
    std::ifstream probe(path);
    if (!probe)
        return fail(Code::manifest, engine_path,
                    "engine has no manifest (" + path + "); build engines with `gedge build`");
    std::string text;
    Status read = read_file(path, text);
    if (!read.ok()) return read;
    return parse_manifest(text, path, out);
}

}  // namespace gedge
