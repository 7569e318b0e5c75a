// The C API: a handle around gedge::Engine, statuses as numbers, messages in a thread-local string.
#include "gedge_engine.h"

#include <exception>
#include <memory>
#include <string>

#include "gedge/engine.hpp"

struct gedge_engine {
    std::unique_ptr<gedge::Engine> engine;
};

namespace {

thread_local std::string last_error;

gedge_status finish(const gedge::Status& status) {
    try {
        last_error = status.message();
    } catch (...) {  // no memory for the message: keep the code
        last_error.clear();
    }
    return static_cast<gedge_status>(status.code());
}

gedge_status argument(const char* what) { return finish(gedge::Status(gedge::Code::argument, what)); }

// Runs `body`, turning anything thrown into GEDGE_E_INTERNAL so nothing crosses the C boundary.
template <typename Body>
gedge_status guarded(Body body) {
    try {
        return finish(body());
    } catch (const std::exception& exc) {
        return finish(gedge::Status(gedge::Code::internal, std::string("unexpected exception: ") + exc.what()));
    } catch (...) {
        return finish(gedge::Status(gedge::Code::internal, "unexpected exception"));
    }
}

}  // namespace

extern "C" {

gedge_status gedge_open(const char* engine_path, uint32_t flags, void* cuda_stream, gedge_engine** out) {
    if (!out) return argument("gedge_open: out must not be NULL");
    *out = nullptr;
    if (!engine_path || !*engine_path) return argument("gedge_open: no engine path given");
    if (flags & ~(GEDGE_OPEN_ALLOW_FAILED_PARITY | GEDGE_OPEN_CUDA_GRAPHS))
        return argument("gedge_open: unknown flags");
    return guarded([&] {
        gedge::OpenOptions options;
        options.allow_failed_parity = (flags & GEDGE_OPEN_ALLOW_FAILED_PARITY) != 0;
        options.cuda_graphs = (flags & GEDGE_OPEN_CUDA_GRAPHS) != 0;
        options.stream = cuda_stream;
        auto handle = std::make_unique<gedge_engine>();
        gedge::Status status = gedge::Engine::open(engine_path, options, gedge::default_platform(), handle->engine);
        if (status.ok()) *out = handle.release();
        return status;
    });
}

gedge_status gedge_input(const gedge_engine* engine, gedge_input_shape* out) {
    if (!engine || !out) return argument("gedge_input: engine and out must not be NULL");
    const gedge::InputShape& input = engine->engine->input();
    const gedge::Preprocess& pre = engine->engine->manifest().preprocess;
    out->height = input.height;
    out->width = input.width;
    out->channels = input.channels;
    out->min_batch = input.min_batch;
    out->max_batch = input.max_batch;
    out->patch_mode = pre.present && pre.mode == "patch" ? 1 : 0;
    out->tile_stride = out->patch_mode ? pre.tile_stride() : 0;
    out->scale = pre.present ? static_cast<float>(pre.scale) : 1.0f;
    return finish(gedge::Status());
}

int32_t gedge_score_count(const gedge_engine* engine) {
    return engine ? static_cast<int32_t>(engine->engine->score_names().size()) : 0;
}

const char* gedge_score_name(const gedge_engine* engine, int32_t index) {
    if (!engine || index < 0 || index >= gedge_score_count(engine)) return nullptr;
    return engine->engine->score_names()[static_cast<size_t>(index)].c_str();
}

float gedge_threshold(const gedge_engine* engine) {
    return engine ? engine->engine->threshold32() : 0.0f;
}

gedge_status gedge_score(gedge_engine* engine, const uint8_t* pixels, size_t n, float* scores, uint8_t* rejected) {
    if (!engine) return argument("gedge_score: engine must not be NULL");
    return guarded([&] { return engine->engine->score(pixels, n, scores, rejected); });
}

gedge_status gedge_score_frame(gedge_engine* engine, const uint8_t* frame, int32_t height, int32_t width,
                               int32_t channels, float* scores, uint8_t* rejected) {
    if (!engine) return argument("gedge_score_frame: engine must not be NULL");
    return guarded([&] { return engine->engine->score_frame(frame, height, width, channels, scores, rejected); });
}

const char* gedge_warning(const gedge_engine* engine) { return engine ? engine->engine->warning().c_str() : ""; }

void gedge_close(gedge_engine* engine) {
    try {
        delete engine;
    } catch (...) {  // destructors do not throw; nothing may escape into C all the same
    }
}

const char* gedge_last_error(void) { return last_error.c_str(); }

}  // extern "C"
