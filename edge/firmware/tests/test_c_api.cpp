// The C API through gedge::default_platform(), which the test build links to the stand-in (standin::shared()).
#include <string>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "gedge_engine.h"
#include "harness.hpp"
#include "standin_platform.hpp"

extern "C" int gedge_test_c_roundtrip(const char* engine_path, float* first_score, char* message, size_t size);

namespace {
standin::Platform& fresh_shared() {
    standin::Platform& platform = standin::shared();
    platform.misuse.clear();
    platform.version = 100300;
    platform.gpu_info = {"Orin", 8, 7};
    return platform;
}
std::string error() { return gedge_last_error(); }
}  // namespace

TEST(c_api_opens_scores_and_closes) {
    standin::Platform& platform = fresh_shared();
    const EngineFiles files = standin_engine("c_api_ok");
    gedge_engine* engine = nullptr;
    REQUIRE(gedge_open(files.engine.c_str(), GEDGE_OPEN_CUDA_GRAPHS, nullptr, &engine) == GEDGE_OK);
    CHECK_EQ(error(), "");
    gedge_input_shape input;
    CHECK(gedge_input(engine, &input) == GEDGE_OK);
    CHECK_EQ(input.height, 8);
    CHECK_EQ(input.width, 8);
    CHECK_EQ(input.channels, 3);
    CHECK_EQ(input.min_batch, 1);
    CHECK_EQ(input.max_batch, 4);
    CHECK_EQ(input.patch_mode, 1);
    CHECK_EQ(input.tile_stride, 4);
    CHECK_EQ(input.scale, 1.0f);
    CHECK_EQ(gedge_score_count(engine), 7);
    CHECK_EQ(std::string(gedge_score_name(engine, 0)), "d1");
    CHECK_EQ(std::string(gedge_score_name(engine, 6)), "score");
    CHECK(gedge_score_name(engine, 7) == nullptr);
    CHECK(gedge_score_name(engine, -1) == nullptr);
    CHECK_EQ(gedge_threshold(engine), 5.0f);
    CHECK_EQ(std::string(gedge_warning(engine)), "");

    const std::vector<uint8_t> rows = rows_of(6, 8 * 8 * 3);
    std::vector<float> scores(6 * 7);
    std::vector<uint8_t> rejected(6);
    CHECK(gedge_score(engine, rows.data(), 6, scores.data(), rejected.data()) == GEDGE_OK);
    for (size_t row = 0; row < 6; ++row) {
        const float mean = standin::row_mean(rows.data() + row * 192, 192);
        CHECK_EQ(scores[row * 7], mean);
        CHECK_EQ(scores[row * 7 + 6], 10.0f * mean);
        CHECK_EQ(rejected[row], 10.0f * mean >= 5.0f ? 1 : 0);
    }
    gedge_close(engine);
    for (const std::string& problem : platform.misuse) harness::failure(__FILE__, __LINE__, "misuse: " + problem);
    CHECK_EQ(platform.live_device(), 0);
    CHECK_EQ(platform.live_host(), 0);
}

TEST(c_api_argument_errors_are_statuses_with_messages) {
    fresh_shared();
    gedge_engine* engine = reinterpret_cast<gedge_engine*>(0x1);
    CHECK(gedge_open(nullptr, 0, nullptr, &engine) == GEDGE_E_ARGUMENT);
    CHECK(engine == nullptr);
    CHECK_EQ(error(), "gedge_open: no engine path given");
    CHECK(gedge_open("x.engine", 0, nullptr, nullptr) == GEDGE_E_ARGUMENT);
    CHECK(gedge_open("x.engine", 0x80, nullptr, &engine) == GEDGE_E_ARGUMENT);
    CHECK_EQ(error(), "gedge_open: unknown flags");
    gedge_input_shape input;
    CHECK(gedge_input(nullptr, &input) == GEDGE_E_ARGUMENT);
    float score = 0;
    CHECK(gedge_score(nullptr, nullptr, 1, &score, nullptr) == GEDGE_E_ARGUMENT);
    CHECK(gedge_score_frame(nullptr, nullptr, 1, 1, 3, &score, nullptr) == GEDGE_E_ARGUMENT);
    CHECK_EQ(gedge_score_count(nullptr), 0);
    CHECK(gedge_score_name(nullptr, 0) == nullptr);
    CHECK_EQ(std::string(gedge_warning(nullptr)), "");
    gedge_close(nullptr);

    const EngineFiles files = standin_engine("c_api_arguments");
    REQUIRE(gedge_open(files.engine.c_str(), 0, nullptr, &engine) == GEDGE_OK);
    CHECK(gedge_score(engine, nullptr, 1, &score, nullptr) == GEDGE_E_ARGUMENT);
    CHECK_EQ(error(), "score: pixels and scores must not be null");
    CHECK(gedge_input(engine, nullptr) == GEDGE_E_ARGUMENT);
    CHECK(gedge_input(engine, &input) == GEDGE_OK);
    CHECK_EQ(error(), "");  // a call that succeeds clears the message
    gedge_close(engine);
}

TEST(c_api_refusals_name_the_file_and_the_problem) {
    fresh_shared();
    const std::string folder = test_folder("c_api_refusals");
    gedge_engine* engine = nullptr;
    CHECK(gedge_open((folder + "/missing.engine").c_str(), 0, nullptr, &engine) == GEDGE_E_IO);
    CHECK_EQ(error(), folder + "/missing.engine: engine file does not exist or cannot be read");

    write_text(folder + "/bare.engine", "plan");
    CHECK(gedge_open((folder + "/bare.engine").c_str(), 0, nullptr, &engine) == GEDGE_E_MANIFEST);
    CHECK(error().find("engine has no manifest") != std::string::npos);

    EngineFiles files = standin_engine("c_api_parity");
    files.manifest["parity"]["engine"] = {{"status", "failed"}, {"reason", "rel L2 0.02 > 0.01"}};
    files.write();
    CHECK(gedge_open(files.engine.c_str(), 0, nullptr, &engine) == GEDGE_E_PARITY);
    CHECK(error().rfind(files.engine + ": the manifest records engine parity FAILED", 0) == 0);
    CHECK(engine == nullptr);
    REQUIRE(gedge_open(files.engine.c_str(), GEDGE_OPEN_ALLOW_FAILED_PARITY, nullptr, &engine) == GEDGE_OK);
    CHECK(std::string(gedge_warning(engine)).find("engine parity FAILED (rel L2 0.02 > 0.01)") == 0);
    gedge_close(engine);

    standin::shared().version = 110100;
    CHECK(gedge_open(files.engine.c_str(), GEDGE_OPEN_ALLOW_FAILED_PARITY, nullptr, &engine) == GEDGE_E_MISMATCH);
    CHECK(error().find("but this runtime is 11.1.0") != std::string::npos);
    standin::shared().version = 100300;

    files.manifest["precision"] = "fp64";
    files.write();
    CHECK(gedge_open(files.engine.c_str(), 0, nullptr, &engine) == GEDGE_E_MANIFEST);
    CHECK(error().find("precision") != std::string::npos);
}

TEST(c_api_last_error_is_per_thread) {
    fresh_shared();
    gedge_engine* engine = nullptr;
    CHECK(gedge_open(nullptr, 0, nullptr, &engine) == GEDGE_E_ARGUMENT);
    std::string other;
    std::thread([&] {
        CHECK_EQ(std::string(gedge_last_error()), "");
        gedge_open("", 0, nullptr, &engine);
        other = gedge_last_error();
    }).join();
    CHECK_EQ(other, "gedge_open: no engine path given");
    CHECK_EQ(error(), "gedge_open: no engine path given");
}

TEST(c_api_works_from_c) {
    fresh_shared();
    const EngineFiles files = standin_engine("c_api_from_c");
    float first = -1;
    char message[256];
    CHECK_EQ(gedge_test_c_roundtrip(files.engine.c_str(), &first, message, sizeof message), GEDGE_OK);
    CHECK_EQ(first, 0.0f);  // an all-zero frame: the stand-in's d1 is the mean byte
    CHECK_EQ(std::string(message), "");
    CHECK_EQ(gedge_test_c_roundtrip("", &first, message, sizeof message), GEDGE_E_ARGUMENT);
    CHECK_EQ(std::string(message), "gedge_open: no engine path given");
}
