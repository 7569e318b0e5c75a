// A gedge engine ready to score: manifest read and verified, engine deserialised, `pixels` and every output bound
// by name, pinned host buffers and device buffers for the profile's largest batch, one execution context on a
// caller-given or owned stream, optional CUDA graph replay. Not thread-safe: one call at a time per Engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gedge/manifest.hpp"
#include "gedge/platform.hpp"
#include "gedge/status.hpp"

namespace gedge {

struct OpenOptions {
    bool allow_failed_parity = false;  // open an engine whose manifest records failed parity (a warning then)
    bool cuda_graphs = false;          // capture each batch size's copies + enqueueV3 once, then replay the graph
    StreamHandle stream = nullptr;     // the caller's cudaStream_t (not destroyed on close); nullptr: an owned one
};

struct InputShape {
    int height = 0, width = 0, channels = 0;  // one input: uint8, NHWC
    int min_batch = 1, max_batch = 1;         // the profile's; smaller batches are padded, larger ones split
};

class Engine {
public:
    static Status open(const std::string& engine_path, const OpenOptions& options, Platform& platform,
                       std::unique_ptr<Engine>& out);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const Manifest& manifest() const { return manifest_; }
    const InputShape& input() const { return input_; }
    // The per-input scalar outputs in manifest order (d1, d2, d3, latent, d1_local, d3_local, score); outputs with
    // more than one value per input (amap) are bound but not copied back.
    const std::vector<std::string>& score_names() const { return score_names_; }
    double threshold() const { return manifest_.decision.threshold; }
    // The threshold as the decision uses it: score (float32) >= threshold in float32, as numpy compares in gedge.
    float threshold32() const { return static_cast<float>(manifest_.decision.threshold); }
    // Parity pending / not measured / error, forced verdicts: "" when there is nothing to say.
    const std::string& warning() const { return warning_; }

    // `n` inputs (n x height x width x channels bytes, contiguous): scores n x score_names().size(), row-major;
    // rejected[i] = score >= threshold (rejected may be null).
    Status score(const uint8_t* pixels, size_t n, float* scores, uint8_t* rejected);

    // One frame already at the model's scale: in patch mode its tiles (tile stride from the manifest), each score
    // the maximum over the tiles; in resize mode the frame must be one input. scores: score_names().size().
    Status score_frame(const uint8_t* frame, int height, int width, int channels, float* scores, uint8_t* rejected);

private:
    struct Output {
        std::string name;
        size_t per_input = 0;  // float32 values per input
        void* device = nullptr;
        float* host = nullptr;  // pinned; only for scalar outputs
        int score_index = -1;   // position in score_names_, -1 when not copied back
    };

    Engine(Platform& platform) : platform_(platform) {}
    Status open_checked(const std::string& engine_path, const OpenOptions& options);
    Status bind(const std::string& engine_path);
    Status allocate();
    Status set_batch(size_t rows);
    Status record(size_t rows);
    Status run_chunk(size_t rows);
    Status score_checked(const uint8_t* pixels, size_t n, float* scores, uint8_t* rejected);
    void drop_graph();
    void recover();

    Platform& platform_;
    Manifest manifest_;
    InputShape input_;
    std::vector<std::string> score_names_;
    int score_column_ = -1;  // where `score` is in score_names_
    std::string warning_;
    bool cuda_graphs_ = false;

    std::unique_ptr<EngineModel> model_;
    std::unique_ptr<ExecutionContext> context_;
    StreamHandle stream_ = nullptr;
    bool owns_stream_ = false;
    size_t row_bytes_ = 0;
    void* device_input_ = nullptr;
    uint8_t* host_input_ = nullptr;
    std::vector<Output> outputs_;
    size_t batch_ = 0;  // the rows the context's input shape is set to (0: not set)
    GraphHandle graph_ = nullptr;  // captured for batch_ rows
};

}  // namespace gedge
