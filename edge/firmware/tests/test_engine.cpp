// gedge::Engine on the stand-in platform: binding, batching, CUDA graphs, streams, refusals and failures at every
// TensorRT/CUDA call, with the stand-in checking how each call is used and that nothing leaks.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "gedge/batching.hpp"
#include "gedge/engine.hpp"
#include "harness.hpp"
#include "standin_platform.hpp"

using gedge::Code;
using gedge::Engine;

namespace {

const size_t kRow = 8 * 8 * 3;
const std::vector<std::string> kScores = {"d1", "d2", "d3", "latent", "d1_local", "d3_local", "score"};

// What the stand-in engine gives each row, in score_names() order.
std::vector<float> expected(const std::vector<uint8_t>& rows) {
    std::vector<float> out;
    for (size_t row = 0; row < rows.size() / kRow; ++row) {
        const float mean = standin::row_mean(rows.data() + row * kRow, kRow);
        for (size_t k = 0; k < kScores.size(); ++k) out.push_back(standin::output_value(kScores[k], k, mean));
    }
    return out;
}

void no_misuse(const standin::Platform& platform) {
    for (const std::string& problem : platform.misuse) harness::failure(__FILE__, __LINE__, "misuse: " + problem);
}

void nothing_left(const standin::Platform& platform, int streams = 0) {
    CHECK_EQ(platform.live_host(), 0);
    CHECK_EQ(platform.live_device(), 0);
    CHECK_EQ(platform.live_streams(), streams);
    CHECK_EQ(platform.live_graphs(), 0);
    CHECK_EQ(standin::Platform::live_contexts, 0);
    CHECK_EQ(standin::Platform::live_models, 0);
}

gedge::Status open(const EngineFiles& files, standin::Platform& platform, std::unique_ptr<Engine>& engine,
                   gedge::OpenOptions options = {}) {
    return Engine::open(files.engine, options, platform, engine);
}

void scores_match(const std::vector<uint8_t>& rows, const std::vector<float>& got) {
    const std::vector<float> want = expected(rows);
    CHECK_EQ(got.size(), want.size());
    size_t wrong = 0;
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) wrong += got[i] == want[i] ? 0 : 1;
    CHECK_EQ(wrong, 0u);
}

}  // namespace

TEST(engine_binds_by_name_and_scores_in_order_across_split_batches) {
    standin::Platform platform;
    const EngineFiles files = standin_engine("engine_scores");
    {
        std::unique_ptr<Engine> engine;
        REQUIRE_OK(open(files, platform, engine));
        CHECK(engine->score_names() == kScores);  // amap is bound, not returned
        CHECK_EQ(engine->input().max_batch, 4);
        CHECK_EQ(engine->warning(), "");
        const std::vector<uint8_t> rows = rows_of(10, kRow);
        std::vector<float> scores(10 * kScores.size());
        std::vector<uint8_t> rejected(10, 9);
        REQUIRE_OK(engine->score(rows.data(), 10, scores.data(), rejected.data()));
        scores_match(rows, scores);
        CHECK(platform.enqueued_batches == std::vector<size_t>({4, 4, 2}));
        for (size_t row = 0; row < 10; ++row)
            CHECK_EQ(rejected[row], scores[row * kScores.size() + 6] >= 5.0f ? 1 : 0);
        CHECK(std::count(rejected.begin(), rejected.end(), 1) > 0);
        CHECK(std::count(rejected.begin(), rejected.end(), 0) > 0);
    }
    no_misuse(platform);
    nothing_left(platform);
}

TEST(small_batches_are_padded_to_the_profile_minimum) {
    standin::Platform platform;
    const EngineFiles files = standin_engine("engine_padding", 3, 4);
    std::unique_ptr<Engine> engine;
    REQUIRE_OK(open(files, platform, engine));
    const std::vector<uint8_t> rows = rows_of(5, kRow, 7);
    std::vector<float> scores(5 * kScores.size());
    REQUIRE_OK(engine->score(rows.data(), 5, scores.data(), nullptr));
    scores_match(rows, scores);
    CHECK(platform.enqueued_batches == std::vector<size_t>({4, 3}));
    engine.reset();
    no_misuse(platform);
    nothing_left(platform);
}

TEST(cuda_graphs_are_captured_per_batch_size_and_replayed) {
    standin::Platform platform;
    const EngineFiles files = standin_engine("engine_graphs");
    gedge::OpenOptions options;
    options.cuda_graphs = true;
    {
        std::unique_ptr<Engine> engine;
        REQUIRE_OK(open(files, platform, engine, options));
        std::vector<uint8_t> rows = rows_of(12, kRow, 3);
        std::vector<float> scores(12 * kScores.size());
        REQUIRE_OK(engine->score(rows.data(), 12, scores.data(), nullptr));
        scores_match(rows, scores);
        CHECK_EQ(platform.graph_launches, 2);  // chunk 1 runs and is captured, chunks 2 and 3 replay it
        CHECK_EQ(platform.live_graphs(), 1);
        rows = rows_of(6, kRow, 4);  // 4 (replayed) then 2 (a new size: run, captured)
        scores.assign(6 * kScores.size(), 0);
        REQUIRE_OK(engine->score(rows.data(), 6, scores.data(), nullptr));
        scores_match(rows, scores);
        CHECK_EQ(platform.graph_launches, 3);
        CHECK_EQ(platform.live_graphs(), 1);
        CHECK(platform.enqueued_batches == std::vector<size_t>({4, 4, 4, 4, 2}));
    }
    no_misuse(platform);  // a graph replayed at another input shape would be reported here
    nothing_left(platform);
}

TEST(a_callers_stream_is_used_and_left_alive) {
    standin::Platform platform;
    const EngineFiles files = standin_engine("engine_stream");
    gedge::StreamHandle stream = nullptr;
    REQUIRE_OK(platform.stream_create(&stream));
    gedge::OpenOptions options;
    options.stream = stream;
    {
        std::unique_ptr<Engine> engine;
        REQUIRE_OK(open(files, platform, engine, options));
        CHECK_EQ(platform.live_streams(), 1);  // no stream of its own
        const std::vector<uint8_t> rows = rows_of(3, kRow);
        std::vector<float> scores(3 * kScores.size());
        REQUIRE_OK(engine->score(rows.data(), 3, scores.data(), nullptr));
        scores_match(rows, scores);
    }
    nothing_left(platform, 1);
    platform.stream_destroy(stream);
    no_misuse(platform);
}

TEST(failed_parity_is_refused_unless_allowed_pending_is_a_warning) {
    standin::Platform platform;
    EngineFiles files = standin_engine("engine_parity");
    files.manifest["parity"]["engine"] = {{"status", "failed"}, {"reason", "agreement 97.0 %"}};
    files.write();
    std::unique_ptr<Engine> engine;
    gedge::Status status = open(files, platform, engine);
    CHECK(status.code() == Code::parity);
    CHECK(!engine);
    gedge::OpenOptions allow;
    allow.allow_failed_parity = true;
    REQUIRE_OK(open(files, platform, engine, allow));
    CHECK(engine->warning().find("engine parity FAILED (agreement 97.0 %)") == 0);
    engine.reset();

    files.manifest["parity"]["engine"] = {{"status", "pending"}, {"reason", "no GPU at build time"}};
    files.write();
    REQUIRE_OK(open(files, platform, engine));
    CHECK_EQ(engine->warning(), "engine parity pending (no GPU at build time)");
    engine.reset();
    no_misuse(platform);
    nothing_left(platform);
}

TEST(engines_for_another_tensorrt_or_gpu_or_with_changed_bytes_are_refused) {
    const EngineFiles files = standin_engine("engine_mismatch");
    std::unique_ptr<Engine> engine;
    {
        standin::Platform platform;
        platform.version = 100400;
        const gedge::Status status = open(files, platform, engine);
        CHECK(status.code() == Code::mismatch);
        CHECK(status.message().find("built with tensorrt 10.3.0.26 but this runtime is 10.4.0") != std::string::npos);
    }
    {
        standin::Platform platform;
        platform.gpu_info = {"NVIDIA H200", 9, 0};
        const gedge::Status status = open(files, platform, engine);
        CHECK(status.code() == Code::mismatch);
        CHECK(status.message().find("built on Orin (SM87) but this GPU is NVIDIA H200 (SM90)") != std::string::npos);
    }
    {
        standin::Platform platform;
        write_text(files.engine, files.plan + " ");  // one byte more than the manifest's hash covers
        const gedge::Status status = open(files, platform, engine);
        CHECK(status.code() == Code::mismatch);
        CHECK(status.message().find("sha256 differs") != std::string::npos);
        CHECK_EQ(platform.calls["deserialize"], 0);  // refused before TensorRT sees the bytes
    }
    CHECK(!engine);
}

TEST(an_engine_that_differs_from_its_manifest_is_refused_naming_the_tensor) {
    struct Case {
        std::string plan;
        std::string expected;
    };
    const std::vector<std::string> all = {"d1", "d2", "d3", "latent", "d1_local", "d3_local", "score", "amap"};
    std::vector<std::string> no_d3 = all;
    no_d3.erase(no_d3.begin() + 2);
    std::vector<std::string> extra = all;
    extra.push_back("debug");
    const std::vector<Case> cases = {
        {standin::plan_json(8, 8, 3, 1, 4, 4, all, "image"), "input `image` that its manifest does not name"},
        {standin::plan_json(8, 8, 3, 1, 4, 4, no_d3), "no output `d3`"},
        {standin::plan_json(8, 8, 3, 1, 4, 4, extra), "output `debug` that its manifest does not list"},
        {standin::plan_json(8, 8, 3, 1, 4, 4, all, "pixels", "float32"), "input `pixels` is float32"},
        {standin::plan_json(8, 8, 3, 1, 4, 4, all, "pixels", "uint8", "float16"), "is float16; gedge's outputs are float32"},
        {standin::plan_json(8, 8, 3, 1, 4, 8, all), "the engine's profile"},
        {standin::plan_json(16, 16, 3, 1, 4, 4, all), "input shape [-1, 16, 16, 3] differs"},
    };
    for (const Case& c : cases) {
        standin::Platform platform;
        EngineFiles files = standin_engine("engine_binding");
        files.plan = c.plan;
        files.write();
        std::unique_ptr<Engine> engine;
        const gedge::Status status = open(files, platform, engine);
        CHECK(status.code() == Code::mismatch);
        if (status.message().find(c.expected) == std::string::npos)
            harness::failure(__FILE__, __LINE__, "\"" + status.message() + "\" lacks \"" + c.expected + "\"");
        no_misuse(platform);
        nothing_left(platform);
    }
}

TEST(a_plan_tensorrt_cannot_read_is_a_tensorrt_error) {
    standin::Platform platform;
    EngineFiles files = standin_engine("engine_corrupt");
    files.plan = "not a plan";  // the manifest's hash is made to match: only TensorRT can tell
    files.write();
    std::unique_ptr<Engine> engine;
    const gedge::Status status = open(files, platform, engine);
    CHECK(status.code() == Code::tensorrt);
    CHECK(status.message().find("TensorRT cannot deserialise the engine") != std::string::npos);
    nothing_left(platform);
}

TEST(a_failure_at_any_call_while_opening_is_returned_and_leaks_nothing) {
    const EngineFiles files = standin_engine("engine_open_faults");
    const std::vector<std::pair<std::string, Code>> calls = {
        {"gpu", Code::cuda},           {"deserialize", Code::tensorrt},   {"profile_shape", Code::tensorrt},
        {"stream_create", Code::cuda}, {"create_context", Code::tensorrt}, {"set_profile", Code::tensorrt},
        {"device_alloc", Code::cuda},  {"host_alloc", Code::cuda},        {"set_address", Code::tensorrt},
        {"set_input_shape", Code::tensorrt}, {"tensor_shape", Code::tensorrt}};
    for (const auto& [call, code] : calls) {
        for (int after : {0, 1}) {  // the first call of its kind, and a later one where there are several
            standin::Platform platform;
            platform.fail_next(call, after);
            std::unique_ptr<Engine> engine;
            const gedge::Status status = open(files, platform, engine);
            if (platform.calls[call] <= after) continue;  // made fewer calls than that: nothing injected
            if (status.ok() || status.code() != code)
                harness::failure(__FILE__, __LINE__, call + " failing: got \"" + status.message() + "\"");
            CHECK(!engine);
            CHECK(status.message().rfind(files.engine + ": ", 0) == 0);
            no_misuse(platform);
            nothing_left(platform);
        }
    }
}

TEST(a_failure_while_scoring_is_returned_and_the_next_call_works) {
    const EngineFiles files = standin_engine("engine_score_faults");
    for (bool graphs : {false, true}) {
        std::vector<std::string> calls = {"copy_to_device", "enqueue", "copy_to_host", "synchronize", "set_input_shape"};
        if (graphs) calls.insert(calls.end(), {"capture_begin", "capture_end", "graph_launch"});
        for (const std::string& call : calls) {
            standin::Platform platform;
            gedge::OpenOptions options;
            options.cuda_graphs = graphs;
            {
                std::unique_ptr<Engine> engine;
                REQUIRE_OK(open(files, platform, engine, options));
                const std::vector<uint8_t> rows = rows_of(10, kRow, 5);
                std::vector<float> scores(10 * kScores.size());
                const bool once_per_call = call == "set_input_shape" || call.rfind("capture", 0) == 0 ||
                                           call == "graph_launch";
                platform.fail_next(call, once_per_call ? 0 : 1);
                const gedge::Status status = engine->score(rows.data(), 10, scores.data(), nullptr);
                if (status.ok()) harness::failure(__FILE__, __LINE__, call + " failing: score returned ok");
                REQUIRE_OK(engine->score(rows.data(), 10, scores.data(), nullptr));
                scores_match(rows, scores);
            }
            for (const std::string& problem : platform.misuse)
                harness::failure(__FILE__, __LINE__, call + " failing: misuse: " + problem);
            nothing_left(platform);
        }
    }
}

TEST(score_refuses_bad_arguments) {
    standin::Platform platform;
    const EngineFiles files = standin_engine("engine_arguments");
    std::unique_ptr<Engine> engine;
    REQUIRE_OK(open(files, platform, engine));
    std::vector<uint8_t> rows = rows_of(1, kRow);
    std::vector<float> scores(kScores.size());
    CHECK(engine->score(rows.data(), 0, scores.data(), nullptr).code() == Code::argument);
    CHECK(engine->score(nullptr, 1, scores.data(), nullptr).code() == Code::argument);
    CHECK(engine->score(rows.data(), 1, nullptr, nullptr).code() == Code::argument);
    CHECK(engine->score_frame(rows.data(), 8, 8, 1, scores.data(), nullptr).code() == Code::argument);
    REQUIRE_OK(engine->score_frame(rows.data(), 4, 4, 3, scores.data(), nullptr));  // mirrored to one 8x8 tile
    CHECK(engine->score_frame(nullptr, 8, 8, 3, scores.data(), nullptr).code() == Code::argument);
}

TEST(frames_are_tiled_and_each_score_is_the_maximum_over_tiles) {
    standin::Platform platform;
    const EngineFiles files = standin_engine("engine_frame");
    std::unique_ptr<Engine> engine;
    REQUIRE_OK(open(files, platform, engine));
    const std::vector<uint8_t> frame = rows_of(1, 16 * 20 * 3, 9);  // 16 high, 20 wide: 3 x 4 tiles of 8, stride 4
    std::vector<float> scores(kScores.size());
    uint8_t rejected = 7;
    REQUIRE_OK(engine->score_frame(frame.data(), 16, 20, 3, scores.data(), &rejected));
    std::vector<uint8_t> tiles;
    size_t count = 0;
    REQUIRE_OK(gedge::cut_tiles(frame.data(), 16, 20, 3, 8, 4, tiles, count));
    CHECK_EQ(count, 12u);
    const std::vector<float> per_tile = expected(tiles);
    for (size_t k = 0; k < kScores.size(); ++k) {
        float best = -INFINITY;
        for (size_t t = 0; t < count; ++t) best = std::max(best, per_tile[t * kScores.size() + k]);
        CHECK_EQ(scores[k], best);
    }
    CHECK_EQ(rejected, scores[6] >= 5.0f ? 1 : 0);
}

TEST(resize_mode_frames_must_be_one_input) {
    standin::Platform platform;
    EngineFiles files = standin_engine("engine_resize");
    files.manifest["preprocess"]["mode"] = "resize";
    files.write();
    std::unique_ptr<Engine> engine;
    REQUIRE_OK(open(files, platform, engine));
    const std::vector<uint8_t> frame = rows_of(1, 16 * 16 * 3);
    std::vector<float> scores(kScores.size());
    const gedge::Status status = engine->score_frame(frame.data(), 16, 16, 3, scores.data(), nullptr);
    CHECK(status.code() == Code::argument);
    CHECK(status.message().find("frame is 16x16 but the model takes 8x8 frames") == 0);
    REQUIRE_OK(engine->score_frame(frame.data(), 8, 8, 3, scores.data(), nullptr));
    scores_match(std::vector<uint8_t>(frame.begin(), frame.begin() + kRow), scores);
}
