// gedge-score (examples/gedge_score.cpp) built on the stand-in platform: its command line, PNG and raw frames,
// the JSON lines of `gedge score --json`, and its one-line errors with exit code 2.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fixtures.hpp"
#include "gedge/batching.hpp"
#include "harness.hpp"
#include "standin_platform.hpp"

#if GEDGE_HAVE_PNG
#include <png.h>
#endif

namespace {

struct Run {
    int code = -1;
    std::vector<nlohmann::ordered_json> lines;
    std::string errors;
};

Run run(const std::string& arguments, const std::string& folder) {
    const std::string err = folder + "/stderr.txt";
    const std::string command = std::string("'") + GEDGE_SCORE_STANDIN + "' " + arguments + " 2>'" + err + "'";
    Run result;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return result;
    std::string out;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    const int status = pclose(pipe);
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    size_t at = 0;
    while (at < out.size()) {
        const size_t end = out.find('\n', at);
        result.lines.push_back(nlohmann::ordered_json::parse(out.substr(at, end - at), nullptr, false));
        at = end == std::string::npos ? out.size() : end + 1;
    }
    result.errors = read_text(err);
    return result;
}

// The image-level scores gedge-score should print for a frame: the stand-in's values, maximum over tiles.
std::vector<float> frame_scores(const std::vector<uint8_t>& frame, int height, int width) {
    std::vector<uint8_t> tiles;
    size_t count = 0;
    (void)gedge::cut_tiles(frame.data(), height, width, 3, 8, 4, tiles, count);
    const std::vector<std::string> names = {"d1", "d2", "d3", "latent", "d1_local", "d3_local", "score"};
    std::vector<float> best(names.size(), -1e30f);
    for (size_t t = 0; t < count; ++t) {
        const float mean = standin::row_mean(tiles.data() + t * 192, 192);
        for (size_t k = 0; k < names.size(); ++k) best[k] = std::max(best[k], standin::output_value(names[k], k, mean));
    }
    return best;
}

void record_matches(const nlohmann::ordered_json& record, const std::string& path, const std::vector<float>& want) {
    REQUIRE(record.is_object());
    std::vector<std::string> keys;
    for (auto it = record.begin(); it != record.end(); ++it) keys.push_back(it.key());
    CHECK(keys == std::vector<std::string>({"path", "d1", "d2", "d3", "latent", "d1_local", "d3_local", "score",
                                            "anomalous"}));
    CHECK_EQ(record["path"].get<std::string>(), path);
    const std::vector<std::string> names(keys.begin() + 1, keys.end() - 1);
    for (size_t k = 0; k < names.size(); ++k) CHECK_EQ(record[names[k]].get<double>(), static_cast<double>(want[k]));
    CHECK_EQ(record["anomalous"].get<bool>(), want[6] >= 5.0f);
}

}  // namespace

TEST(gedge_score_prints_one_json_line_per_raw_frame) {
    const EngineFiles files = standin_engine("gedge_score_raw");
    const std::string folder = files.engine.substr(0, files.engine.rfind('/'));
    const std::vector<uint8_t> a = rows_of(1, 16 * 20 * 3, 2), b = rows_of(1, 16 * 20 * 3, 200);
    write_text(folder + "/a.raw", std::string(a.begin(), a.end()));
    write_text(folder + "/b.raw", std::string(b.begin(), b.end()));
    const Run result = run("--raw-size 20x16 --json '" + files.engine + "' '" + folder + "/a.raw' '" + folder + "/b.raw'",
                           folder);
    CHECK_EQ(result.code, 0);
    CHECK_EQ(result.errors, "");
    REQUIRE(result.lines.size() == 2);
    record_matches(result.lines[0], folder + "/a.raw", frame_scores(a, 16, 20));
    record_matches(result.lines[1], folder + "/b.raw", frame_scores(b, 16, 20));
}

#if GEDGE_HAVE_PNG
TEST(gedge_score_reads_png_frames_and_refuses_grayscale_for_rgb) {
    const EngineFiles files = standin_engine("gedge_score_png");
    const std::string folder = files.engine.substr(0, files.engine.rfind('/'));
    const std::vector<uint8_t> rgb = rows_of(1, 12 * 12 * 3, 5);
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = 12;
    image.height = 12;
    image.format = PNG_FORMAT_RGB;
    REQUIRE(png_image_write_to_file(&image, (folder + "/f.png").c_str(), 0, rgb.data(), 0, nullptr));
    const Run ok = run("'" + files.engine + "' '" + folder + "/f.png'", folder);
    CHECK_EQ(ok.code, 0);
    REQUIRE(ok.lines.size() == 1);
    record_matches(ok.lines[0], folder + "/f.png", frame_scores(rgb, 12, 12));

    const std::vector<uint8_t> gray(12 * 12, 128);
    png_image mono{};
    mono.version = PNG_IMAGE_VERSION;
    mono.width = 12;
    mono.height = 12;
    mono.format = PNG_FORMAT_GRAY;
    REQUIRE(png_image_write_to_file(&mono, (folder + "/g.png").c_str(), 0, gray.data(), 0, nullptr));
    const Run bad = run("'" + files.engine + "' '" + folder + "/g.png'", folder);
    CHECK_EQ(bad.code, 2);
    CHECK_EQ(bad.errors, "error: " + folder + "/g.png: has 1 channel(s) but the model expects 3 (RGB)\n");
}
#endif

TEST(gedge_score_bad_input_is_one_line_and_exit_code_2) {
    EngineFiles files = standin_engine("gedge_score_errors");
    const std::string folder = files.engine.substr(0, files.engine.rfind('/'));
    write_text(folder + "/short.raw", "abc");
    Run result = run("'" + files.engine + "' '" + folder + "/short.raw'", folder);
    CHECK_EQ(result.code, 2);
    CHECK(result.lines.empty());
    CHECK_EQ(result.errors, "error: " + folder + "/short.raw: raw frame has 3 bytes, expected 8x8x3 = 192 (give "
                                                 "--raw-size WxH)\n");

    result = run("'" + folder + "/none.engine' '" + folder + "/short.raw'", folder);
    CHECK_EQ(result.code, 2);
    CHECK_EQ(result.errors, "error: " + folder + "/none.engine: engine file does not exist or cannot be read\n");

    result = run("'" + files.engine + "'", folder);
    CHECK_EQ(result.code, 2);
    CHECK(result.errors.rfind("usage: gedge-score", 0) == 0);

    files.manifest["preprocess"]["scale"] = 0.5;  // the model scales camera frames: gedge-score does not resample
    files.manifest["parity"]["engine"] = {{"status", "not measured"}, {"reason", "no --ref"}};
    files.write();
    const std::vector<uint8_t> frame = rows_of(1, 8 * 8 * 3);
    write_text(folder + "/f.raw", std::string(frame.begin(), frame.end()));
    result = run("'" + files.engine + "' '" + folder + "/f.raw'", folder);
    CHECK_EQ(result.code, 2);
    CHECK(result.errors.find("the model scales frames by 0.5 before tiling and gedge-score does not resample") !=
          std::string::npos);
    result = run("--prescaled '" + files.engine + "' '" + folder + "/f.raw'", folder);
    CHECK_EQ(result.code, 0);
    CHECK_EQ(result.lines.size(), 1u);
    CHECK_EQ(result.errors, "warning: " + files.engine + ": engine parity not measured (no --ref)\n");
}
