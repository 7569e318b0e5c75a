#include <string>

#include "fixtures.hpp"
#include "gedge/compat.hpp"
#include "gedge/sha256.hpp"
#include "harness.hpp"

using gedge::Code;

namespace {

gedge::Manifest parsed_example() {
    gedge::Manifest manifest;
    REQUIRE_OK(gedge::parse_manifest(read_text(GEDGE_EXAMPLE_MANIFEST), "example.json", manifest));
    return manifest;
}

gedge::RuntimeInfo orin() {
    gedge::RuntimeInfo runtime;
    runtime.version = "10.3.0";
    runtime.gpu_name = "Orin";
    runtime.compute_capability = "SM87";
    return runtime;
}

}  // namespace

TEST(tensorrt_version_numbers_decode_for_8x_and_10_plus) {
    CHECK_EQ(gedge::tensorrt_version_string(8503), "8.5.3");
    CHECK_EQ(gedge::tensorrt_version_string(8601), "8.6.1");
    CHECK_EQ(gedge::tensorrt_version_string(100300), "10.3.0");
    CHECK_EQ(gedge::tensorrt_version_string(101300), "10.13.0");
    CHECK_EQ(gedge::tensorrt_version_string(110100), "11.1.0");
    CHECK_EQ(gedge::tensorrt_version_string(0), "unknown");
}

TEST(tensorrt_versions_compare_major_minor_patch) {
    CHECK(gedge::same_tensorrt_version("10.3.0.26", "10.3.0"));
    CHECK(gedge::same_tensorrt_version("10.3", "10.3.0"));
    CHECK(gedge::same_tensorrt_version("8.6.1.6", "8.6.1"));
    CHECK(!gedge::same_tensorrt_version("10.3.0", "10.4.0"));
    CHECK(!gedge::same_tensorrt_version("10.3.1", "10.3.0"));
    CHECK(!gedge::same_tensorrt_version("10.13.0", "10.1.30"));
    CHECK(!gedge::same_tensorrt_version("", "10.3.0"));
    CHECK(!gedge::same_tensorrt_version("unknown", "unknown"));
}

TEST(compute_capabilities_are_named_like_tensorrt) {
    CHECK_EQ(gedge::compute_capability_name(8, 7), "SM87");
    CHECK_EQ(gedge::compute_capability_name(12, 0), "SM120");
}

TEST(target_differences_read_like_the_python_ones) {
    gedge::Target target;
    target.kind = "gpu";
    target.gpu_name = "Orin";
    target.compute_capability = "SM87";
    gedge::RuntimeInfo runtime = orin();
    CHECK_EQ(gedge::target_problem(target, runtime), "");
    runtime.gpu_name = "NVIDIA H200";
    runtime.compute_capability = "SM90";
    CHECK_EQ(gedge::target_problem(target, runtime),
             "the engine was built on Orin (SM87) but this GPU is NVIDIA H200 (SM90)");
    runtime = orin();
    runtime.gpu_name = "Xavier";
    CHECK_EQ(gedge::target_problem(target, runtime), "the engine was built on Orin but this GPU is Xavier");
    target.gpu_name = "";
    target.compute_capability = "";  // built where the GPU was not known: nothing to compare
    CHECK_EQ(gedge::target_problem(target, runtime), "");
    gedge::Target aot;
    aot.kind = "aot";
    aot.compute_capabilities = {"SM86", "SM89"};
    CHECK_EQ(gedge::target_problem(aot, orin()), "the engine was built for SM86, SM89 but this GPU is SM87");
}

TEST(verify_engine_refuses_changed_bytes_other_tensorrt_and_other_gpu) {
    gedge::Manifest manifest = parsed_example();
    const std::string bytes = "engine bytes";
    REQUIRE_OK(gedge::sha256_hex(bytes.data(), bytes.size(), manifest.engine_sha256));
    REQUIRE_OK(gedge::verify_engine(manifest, bytes.data(), bytes.size(), orin(), "a.engine"));

    gedge::Status status = gedge::verify_engine(manifest, "engine bytez", 12, orin(), "a.engine");
    CHECK(status.code() == Code::mismatch);
    CHECK_EQ(status.message(),
             "a.engine: engine does not match its manifest (sha256 differs: replaced, modified or truncated?)");

    gedge::RuntimeInfo newer = orin();
    newer.version = "10.4.0";
    status = gedge::verify_engine(manifest, bytes.data(), bytes.size(), newer, "a.engine");
    CHECK(status.code() == Code::mismatch);
    CHECK_EQ(status.message(),
             "a.engine: engine was built with tensorrt 10.3.0 but this runtime is 10.4.0 (engines load only on the "
             "TensorRT version that built them); rebuild it with `gedge build` on this machine");

    manifest.tensorrt_flavour = "tensorrt_rtx";
    manifest.tensorrt_version = "1.7.1.116";
    status = gedge::verify_engine(manifest, bytes.data(), bytes.size(), orin(), "a.engine");
    CHECK_EQ(status.message(), "a.engine: engine was built with tensorrt_rtx 1.7.1.116 but this runtime is tensorrt "
                               "10.3.0; rebuild it with `gedge build` on this machine");

    manifest = parsed_example();
    REQUIRE_OK(gedge::sha256_hex(bytes.data(), bytes.size(), manifest.engine_sha256));
    gedge::RuntimeInfo h200 = orin();
    h200.gpu_name = "NVIDIA H200";
    h200.compute_capability = "SM90";
    status = gedge::verify_engine(manifest, bytes.data(), bytes.size(), h200, "a.engine");
    CHECK(status.code() == Code::mismatch);
    CHECK_EQ(status.message(), "a.engine: the engine was built on Orin (SM87) but this GPU is NVIDIA H200 (SM90); "
                               "rebuild it with `gedge build` on this machine");
}

TEST(parity_failed_is_refused_unless_allowed_and_pending_is_a_warning) {
    gedge::Manifest manifest = parsed_example();
    std::string warning;
    REQUIRE_OK(gedge::check_parity(manifest, false, "a.engine", warning));
    CHECK_EQ(warning, "");

    manifest.parity_status = "failed";
    manifest.parity_reason = "agreement 97.0 % < 99.5 %";
    gedge::Status status = gedge::check_parity(manifest, false, "a.engine", warning);
    CHECK(status.code() == Code::parity);
    CHECK(status.message().find("GEDGE_OPEN_ALLOW_FAILED_PARITY") != std::string::npos);
    CHECK(status.message().find("agreement 97.0 %") != std::string::npos);
    REQUIRE_OK(gedge::check_parity(manifest, true, "a.engine", warning));
    CHECK(warning.find("engine parity FAILED") == 0);

    for (const char* pending : {"pending", "not measured", "error"}) {
        manifest.parity_status = pending;
        manifest.parity_reason = "no GPU at build time";
        REQUIRE_OK(gedge::check_parity(manifest, false, "a.engine", warning));
        CHECK_EQ(warning, std::string("engine parity ") + pending + " (no GPU at build time)");
    }

    manifest.parity_status = "passed";
    manifest.forced = {"gate failed: agreement 97.0 % < 98 %"};
    REQUIRE_OK(gedge::check_parity(manifest, false, "a.engine", warning));
    CHECK_EQ(warning, "built with --force over: gate failed: agreement 97.0 % < 98 %");
}
