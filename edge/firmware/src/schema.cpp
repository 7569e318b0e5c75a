// Validation of a manifest against the engine manifest schema, with valijson (Debian: libvalijson-dev) where the
// build found it. valijson reads draft-07, which is why docs/schemas are written in draft-07.
#include "schema.hpp"

#include "gedge/manifest.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#if GEDGE_HAVE_VALIJSON
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#endif

namespace gedge {

bool schema_validator_available() { return GEDGE_HAVE_VALIJSON != 0; }

namespace detail {

#if GEDGE_HAVE_VALIJSON
namespace {

// "<root>", "[parity]", "[engine]", "[status]" -> "parity/engine/status".
std::string field_path(const std::vector<std::string>& context) {
    std::string out;
    for (const std::string& part : context) {
        if (part == "<root>") continue;
        std::string name = part;
        if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
        if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
        out += (out.empty() ? "" : "/") + name;
    }
    return out.empty() ? "(top level)" : out;
}

// The compiled-in schema, parsed by valijson (its Schema cannot be copied or moved, hence a holder).
struct CompiledSchema {
    nlohmann::json document = nlohmann::json::parse(kEngineManifestSchema);
    valijson::Schema schema;
    CompiledSchema() {
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        valijson::adapters::NlohmannJsonAdapter adapter(document);
        parser.populateSchema(adapter, schema);
    }
};

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    return a.size() < b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

Status validate_engine_schema(const nlohmann::json& document, const std::string& path) {
    try {
        static const CompiledSchema compiled;  // parsed once per process: the schema is a constant of the build
        valijson::Validator validator;
        valijson::ValidationResults results;
        valijson::adapters::NlohmannJsonAdapter target(document);
        if (validator.validate(compiled.schema, target, &results)) return Status();
        // valijson reports an error at every level of a failing path; keep the deepest ones.
        std::vector<valijson::ValidationResults::Error> errors(results.begin(), results.end());
        std::vector<std::string> shown;
        for (const auto& error : errors) {
            bool has_deeper = std::any_of(errors.begin(), errors.end(),
                                          [&](const auto& other) { return is_prefix(error.context, other.context); });
            if (has_deeper) continue;
            std::string line = field_path(error.context) + ": " + error.description;
            if (std::find(shown.begin(), shown.end(), line) == shown.end()) shown.push_back(line);
        }
        std::string message = "does not match engine-manifest.schema.json: ";
        for (size_t i = 0; i < shown.size() && i < 3; ++i) message += (i ? "; " : "") + shown[i];
        if (shown.size() > 3) message += " (and " + std::to_string(shown.size() - 3) + " more)";
        return fail(Code::manifest, path, message);
    } catch (const std::exception& exc) {  // valijson reports a schema it cannot read by throwing
        return fail(Code::internal, path, std::string("the compiled-in manifest schema is unusable: ") + exc.what());
    }
}
#else
Status validate_engine_schema(const nlohmann::json&, const std::string&) { return Status(); }
#endif

}  // namespace detail
}  // namespace gedge
