// Internal: the engine manifest schema (docs/schemas/engine-manifest.schema.json, compiled in) and its validator.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "gedge/status.hpp"

namespace gedge::detail {

// The schema text, generated at build time from docs/schemas (engine_schema.cpp).
extern const char* const kEngineManifestSchema;

// Code::manifest naming up to three offending fields ("path: does not match engine-manifest.schema.json: ...").
Status validate_engine_schema(const nlohmann::json& document, const std::string& path);

}  // namespace gedge::detail
