// gedge-score: score camera frames with a gedge engine through the C API and print one JSON line per frame, the
// records of `gedge score --json`: {"path": ..., "d1": ..., ..., "score": ..., "anomalous": false}.
//
//   gedge-score [--prescaled] [--raw-size WxH] [--cuda-graphs] [--allow-failed-parity] ENGINE FRAME...
//
// A FRAME is a PNG (8-bit gray, RGB or RGBA; alpha is dropped) or raw uint8 HxWxC bytes (.raw, .bin) of the
// model's input size or of --raw-size. Frames are used as they are: gedge-score does not resample, so a model
// whose preprocessing scales frames (manifest preprocess.scale != 1) needs frames at that scale and --prescaled.
// Bad input: one line naming the file and the problem on stderr, exit code 2 (as `gedge score`).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gedge_engine.h"

#if GEDGE_HAVE_PNG
#include <png.h>
#endif

namespace {

struct Frame {
    int height = 0, width = 0, channels = 0;
    std::vector<uint8_t> pixels;
};

bool ends_with(const std::string& text, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return text.size() >= n && text.compare(text.size() - n, n, suffix) == 0;
}

// "" on success, else the problem.
std::string read_raw(const std::string& path, int height, int width, int channels, Frame& frame) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "no such file or it cannot be read";
    frame.pixels.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const size_t expected = static_cast<size_t>(height) * width * channels;
    if (frame.pixels.size() != expected)
        return "raw frame has " + std::to_string(frame.pixels.size()) + " bytes, expected " + std::to_string(width) +
               "x" + std::to_string(height) + "x" + std::to_string(channels) + " = " + std::to_string(expected) +
               " (give --raw-size WxH)";
    frame.height = height;
    frame.width = width;
    frame.channels = channels;
    return "";
}

std::string read_png(const std::string& path, int channels, Frame& frame) {
#if GEDGE_HAVE_PNG
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path.c_str()))
        return std::string("unreadable or corrupt image (") + image.message + ")";
    const int have = (image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    if (have != channels) {
        png_image_free(&image);
        return "has " + std::to_string(have) + " channel(s) but the model expects " + std::to_string(channels) +
               (channels == 3 ? " (RGB)" : " (grayscale)");
    }
    // Read with alpha where there is one and drop it, as Pillow's convert("RGB") / convert("L") does.
    const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    image.format = channels == 3 ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    std::vector<uint8_t> buffer(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, nullptr, buffer.data(), 0, nullptr))
        return std::string("unreadable or corrupt image (") + image.message + ")";
    frame.height = static_cast<int>(image.height);
    frame.width = static_cast<int>(image.width);
    frame.channels = channels;
    const size_t pixels = static_cast<size_t>(frame.height) * frame.width, step = channels + (alpha ? 1 : 0);
    frame.pixels.resize(pixels * channels);
    for (size_t i = 0; i < pixels; ++i) std::memcpy(&frame.pixels[i * channels], &buffer[i * step], channels);
    return "";
#else
    (void)path;
    (void)channels;
    (void)frame;
    return "this gedge-score was built without libpng; give raw frames";
#endif
}

int usage() {
    std::fprintf(stderr,
                 "usage: gedge-score [--prescaled] [--raw-size WxH] [--cuda-graphs] [--allow-failed-parity] "
                 "ENGINE FRAME...\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    uint32_t flags = GEDGE_OPEN_DEFAULT;
    bool prescaled = false;
    int raw_width = 0, raw_height = 0;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--prescaled") {
            prescaled = true;
        } else if (arg == "--cuda-graphs") {
            flags |= GEDGE_OPEN_CUDA_GRAPHS;
        } else if (arg == "--allow-failed-parity") {
            flags |= GEDGE_OPEN_ALLOW_FAILED_PARITY;
        } else if (arg == "--json") {
            // JSON lines are the only output; accepted so the command line reads like `gedge score --json`.
        } else if (arg == "--raw-size" && i + 1 < argc) {
            if (std::sscanf(argv[++i], "%dx%d", &raw_width, &raw_height) != 2 || raw_width < 1 || raw_height < 1)
                return usage();
        } else if (arg.rfind("--", 0) == 0) {
            return usage();
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.size() < 2) return usage();

    gedge_engine* engine = nullptr;
    if (gedge_open(positional[0].c_str(), flags, nullptr, &engine) != GEDGE_OK) {
        std::fprintf(stderr, "error: %s\n", gedge_last_error());
        return 2;
    }
    if (*gedge_warning(engine)) std::fprintf(stderr, "warning: %s: %s\n", positional[0].c_str(), gedge_warning(engine));
    gedge_input_shape input;
    gedge_input(engine, &input);
    if (input.scale != 1.0f && !prescaled) {
        std::fprintf(stderr,
                     "error: %s: the model scales frames by %g before %s and gedge-score does not resample; give "
                     "frames at that scale and pass --prescaled\n",
                     positional[0].c_str(), static_cast<double>(input.scale), input.patch_mode ? "tiling" : "scoring");
        gedge_close(engine);
        return 2;
    }

    const int count = gedge_score_count(engine);
    std::vector<float> scores(static_cast<size_t>(count));
    int status = 0;
    for (size_t f = 1; f < positional.size() && status == 0; ++f) {
        const std::string& path = positional[f];
        Frame frame;
        const bool raw = ends_with(path, ".raw") || ends_with(path, ".bin");
        std::string problem = raw ? read_raw(path, raw_height ? raw_height : input.height,
                                             raw_width ? raw_width : input.width, input.channels, frame)
                                  : read_png(path, input.channels, frame);
        uint8_t rejected = 0;
        if (problem.empty() &&
            gedge_score_frame(engine, frame.pixels.data(), frame.height, frame.width, frame.channels, scores.data(),
                              &rejected) != GEDGE_OK)
            problem = gedge_last_error();
        if (!problem.empty()) {
            std::fprintf(stderr, "error: %s: %s\n", path.c_str(), problem.c_str());
            status = 2;
            break;
        }
        nlohmann::ordered_json record;
        record["path"] = path;
        for (int k = 0; k < count; ++k) record[gedge_score_name(engine, k)] = static_cast<double>(scores[k]);
        record["anomalous"] = rejected != 0;
        std::printf("%s\n", record.dump().c_str());
        std::fflush(stdout);
    }
    gedge_close(engine);
    return status;
}
