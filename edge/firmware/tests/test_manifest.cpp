#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "fixtures.hpp"
#include "gedge/compat.hpp"
#include "gedge/manifest.hpp"
#include "harness.hpp"

using gedge::Code;
using nlohmann::json;

namespace {

json example() { return json::parse(read_text(GEDGE_EXAMPLE_MANIFEST)); }

gedge::Status parse(const json& document, gedge::Manifest& out) {
    return gedge::parse_manifest(document.dump(), "scorer.fp16.engine.json", out);
}

// The manifest is refused with Code::manifest and a message containing `expected`.
void refused(const std::function<void(json&)>& change, const std::string& expected) {
    json document = example();
    change(document);
    gedge::Manifest manifest;
    const gedge::Status status = parse(document, manifest);
    CHECK(status.code() == Code::manifest);
    if (status.message().find(expected) == std::string::npos)
        harness::failure(__FILE__, __LINE__, "message \"" + status.message() + "\" lacks \"" + expected + "\"");
    CHECK(status.message().rfind("scorer.fp16.engine.json: ", 0) == 0);
}

}  // namespace

TEST(the_documented_example_manifest_is_read) {
    gedge::Manifest m;
    REQUIRE_OK(parse(example(), m));
    CHECK_EQ(m.format_version, 2);
    CHECK_EQ(m.precision, "fp16");
    CHECK_EQ(m.tensorrt_flavour, "tensorrt");
    CHECK_EQ(m.tensorrt_version, "10.3.0");
    CHECK_EQ(m.target.gpu_name, "Orin");
    CHECK_EQ(m.target.compute_capability, "SM87");
    CHECK_EQ(m.input_name, "pixels");
    CHECK(m.input_shape == std::vector<int64_t>({-1, 32, 32, 3}));
    CHECK(m.profile_max == std::vector<int64_t>({32, 32, 32, 3}));
    CHECK_EQ(m.outputs.size(), 7u);
    CHECK_EQ(m.decision.primary, "d1_local");
    CHECK_EQ(m.decision.threshold, 2.94);
    CHECK_EQ(m.threshold, 2.94);
    CHECK(m.preprocess.present);
    CHECK_EQ(m.preprocess.mode, "patch");
    CHECK_EQ(m.preprocess.scale, 0.5);
    CHECK_EQ(m.preprocess.tile_stride(), 16);
    CHECK_EQ(m.parity_status, "passed");
    CHECK(m.forced.empty());
}

TEST(new_top_level_facts_are_allowed) {
    json document = example();
    document["a_fact_added_later"] = {{"anything", {1, 2}}};
    document["forced"] = {"gate failed: agreement 97.0 % < 98 %"};
    gedge::Manifest m;
    REQUIRE_OK(parse(document, m));
    CHECK_EQ(m.forced.size(), 1u);
}

TEST(missing_or_mistyped_fields_are_refused_naming_the_field) {
    refused([](json& m) { m.erase("engine_sha256"); }, "engine_sha256");
    refused([](json& m) { m["precision"] = "fp64"; }, "precision");
    refused([](json& m) { m["engine_sha256"] = "ABC"; }, "engine_sha256");
    refused([](json& m) { m.erase("decision"); }, "decision");
    refused([](json& m) { m["decision"].erase("threshold"); }, "threshold");
    refused([](json& m) { m["threshold"] = "2.94"; }, "threshold");
    refused([](json& m) { m["parity"]["engine"]["status"] = "ok"; }, "status");
    refused([](json& m) { m["tensorrt"].erase("version"); }, "version");
    refused([](json& m) { m["outputs"] = {"d1"}; }, "score");
    refused([](json& m) { m["profile"]["max"] = {0, 32, 32, 3}; }, "max");
    refused([](json& m) { m["input"]["dtype"] = "int8"; }, "dtype");
    refused([](json& m) { m["forced"] = "gate failed"; }, "forced");
}

TEST(facts_that_must_agree_are_checked) {
    refused([](json& m) { m["threshold"] = 3.0; }, "threshold differs from decision/threshold");
    refused([](json& m) { m["primary_score"] = "d3"; }, "primary_score differs from decision/primary");
    refused([](json& m) { m["profile"]["max"] = {32, 64, 64, 3}; }, "profile shapes differ from input/shape");
    refused([](json& m) { m["profile"]["min"] = {64, 32, 32, 3}; }, "min batch is larger than its max batch");
}

TEST(other_formats_and_versions_are_refused_with_what_they_are) {
    refused([](json& m) { m["format_version"] = 1; }, "manifest format version 1; this runtime reads 2");
    refused([](json& m) { m["format"] = "gedge-scorer"; }, "not a gedge engine manifest");
    refused([](json& m) { m = json::array(); }, "not a gedge engine manifest");
    refused([](json& m) {  // the version 1 form: score_calibration instead of decision
        m["score_calibration"] = m["decision"];
        m.erase("decision");
    }, "decision");
    gedge::Manifest m;
    const gedge::Status status = gedge::parse_manifest("{\"format\": ", "x.json", m);
    CHECK(status.code() == Code::manifest);
    CHECK_EQ(status.message(), "x.json: manifest does not parse (not JSON)");
    const std::string invalid_utf8 = "{\"format\": \"gedge-engine\", \"format_version\": \"\xff\"}";
    CHECK(gedge::parse_manifest(invalid_utf8, "x.json", m).code() == Code::manifest);  // no exception escapes
}

TEST(the_schema_catches_what_the_runtime_does_not_read) {
    // engine_bytes and source_graph/sha256 are not used by the runtime; only the schema constrains them.
    json document = example();
    document["engine_bytes"] = "large";
    document["source_graph"]["sha256"] = "not a hash";
    gedge::Manifest m;
    const gedge::Status status = parse(document, m);
    if (gedge::schema_validator_available()) {
        CHECK(status.code() == Code::manifest);
        CHECK(status.message().find("does not match engine-manifest.schema.json") != std::string::npos);
        CHECK(status.message().find("engine_bytes") != std::string::npos);
        CHECK(status.message().find("source_graph/sha256") != std::string::npos);
    } else {
        CHECK(status.ok());  // typed checks only: fields the runtime does not read are not looked at
    }
    CHECK_EQ(gedge::schema_validator_available(), GEDGE_HAVE_VALIJSON != 0);
}

TEST(an_engine_without_a_manifest_is_refused_like_python_does) {
    const std::string folder = test_folder("no_manifest");
    write_text(folder + "/a.engine", "plan");
    gedge::Manifest m;
    const gedge::Status status = gedge::read_manifest(folder + "/a.engine", m);
    CHECK(status.code() == Code::manifest);
    CHECK_EQ(status.message(), folder + "/a.engine: engine has no manifest (" + folder +
                                   "/a.engine.json); build engines with `gedge build`");
    CHECK_EQ(gedge::manifest_path("x/scorer.int8.engine"), "x/scorer.int8.engine.json");
}

// The table both readers are tested on (tests/test_manifest_rule.py runs it through gedge.core.artifacts): every
// fixture manifest parses, and check_parity accepts it silently, warns, or refuses it with the reason given.
TEST(the_shared_manifest_table_gives_the_python_readers_outcomes) {
    const std::string folder = GEDGE_MANIFEST_FIXTURES;
    const json table = json::parse(read_text(folder + "/expected.json"));
    CHECK(table.at("cases").size() >= 9u);
    for (const auto& [name, expected] : table.at("cases").items()) {
        gedge::Manifest manifest;
        const gedge::Status parsed = gedge::parse_manifest(read_text(folder + "/" + name), name, manifest);
        if (!parsed.ok()) {
            harness::failure(__FILE__, __LINE__, name + ": " + parsed.message());
            continue;
        }
        std::string warning;
        const gedge::Status status = gedge::check_parity(manifest, false, "a.engine", warning);
        const std::string outcome = expected.at("outcome"), reason = expected.at("reason");
        const std::string said = status.ok() ? warning : status.message();
        const bool right = outcome == "refuse" ? status.code() == Code::parity
                           : outcome == "warn" ? status.ok() && !warning.empty()
                                               : status.ok() && warning.empty();
        if (!right || said.find(reason) == std::string::npos)
            harness::failure(__FILE__, __LINE__, name + ": expected " + outcome + " (" + reason + "), got \"" + said +
                                                     "\"");
    }
}
