/* gedge_engine.h: score uint8 camera frames with a gedge TensorRT engine from C.
 *
 * gedge_open reads <engine>.json (the manifest `gedge build` writes), checks it against the engine's bytes
 * (sha256), this TensorRT (version) and this GPU (name, compute capability), refuses an engine whose manifest
 * records failed parity unless GEDGE_OPEN_ALLOW_FAILED_PARITY is given, deserialises the engine and binds its
 * input and outputs by name. Calls return a status; gedge_last_error() says why the last of them failed in this
 * thread ("" after a success). No call aborts or lets an exception out. An engine is used by one thread
 * at a time. Link: -lgedge -lnvinfer -lcudart -lcrypto (see docs/firmware.md). */
#ifndef GEDGE_ENGINE_H
#define GEDGE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gedge_status {
    GEDGE_OK = 0,
    GEDGE_E_ARGUMENT = 1, /* a null pointer, a size out of range, an unusable option */
    GEDGE_E_IO = 2,       /* the engine file is missing or cannot be read */
    GEDGE_E_MANIFEST = 3, /* the manifest is missing, does not parse or does not match the schema */
    GEDGE_E_MISMATCH = 4, /* engine vs manifest, or manifest vs this TensorRT / GPU: rebuild the engine */
    GEDGE_E_PARITY = 5,   /* the manifest records failed parity (see GEDGE_OPEN_ALLOW_FAILED_PARITY) */
    GEDGE_E_TENSORRT = 6, /* TensorRT refused (deserialise, shapes, enqueue) */
    GEDGE_E_CUDA = 7,     /* a CUDA runtime call failed */
    GEDGE_E_INTERNAL = 8  /* a bug in gedge's runtime */
} gedge_status;

/* Flags of gedge_open. */
#define GEDGE_OPEN_DEFAULT 0u
#define GEDGE_OPEN_ALLOW_FAILED_PARITY 1u /* open it anyway; gedge_warning() then says so */
#define GEDGE_OPEN_CUDA_GRAPHS 2u         /* capture each batch size once and replay it */

typedef struct gedge_engine gedge_engine;

/* The input contract, from the manifest and the engine's optimisation profile. */
typedef struct gedge_input_shape {
    int32_t height, width, channels; /* one input: uint8, NHWC (height x width x channels bytes) */
    int32_t min_batch, max_batch;    /* the profile's; gedge_score pads and splits as needed */
    int32_t patch_mode;              /* 1: frames are cut into tiles, the frame's score is the max over them */
    int32_t tile_stride;             /* patch mode: tile step in pixels */
    float scale;                     /* frames are expected at this scale of the camera image (1 = as captured) */
} gedge_input_shape;

/* Open `engine_path`. cuda_stream: the caller's cudaStream_t, or NULL for a stream the engine owns. */
gedge_status gedge_open(const char* engine_path, uint32_t flags, void* cuda_stream, gedge_engine** out);

gedge_status gedge_input(const gedge_engine* engine, gedge_input_shape* out);

/* The scores each input gets, in order (d1, d2, d3, latent, d1_local, d3_local, score); `score` is the
 * normalised primary score that the threshold applies to. Names live as long as the engine. */
int32_t gedge_score_count(const gedge_engine* engine);
const char* gedge_score_name(const gedge_engine* engine, int32_t index);
float gedge_threshold(const gedge_engine* engine);

/* `n` inputs (n x height x width x channels bytes). scores: n x gedge_score_count() floats, row-major;
 * rejected: n bytes, 1 where score >= threshold (may be NULL). */
gedge_status gedge_score(gedge_engine* engine, const uint8_t* pixels, size_t n, float* scores, uint8_t* rejected);

/* One frame already at the model's scale (height x width x channels bytes): patch mode scores its tiles and keeps
 * each score's maximum; resize mode needs height x width = the input's. scores: gedge_score_count() floats. */
gedge_status gedge_score_frame(gedge_engine* engine, const uint8_t* frame, int32_t height, int32_t width,
                               int32_t channels, float* scores, uint8_t* rejected);

/* What the caller should know but that does not stop the engine (parity pending or not measured, verdicts forced
 * at build time); "" when nothing. */
const char* gedge_warning(const gedge_engine* engine);

/* Waits for the engine's work, releases everything; NULL is ignored. */
void gedge_close(gedge_engine* engine);

/* One line naming the file and the problem of this thread's last call that returned a gedge_status; "" when that
 * call succeeded. */
const char* gedge_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* GEDGE_ENGINE_H */
