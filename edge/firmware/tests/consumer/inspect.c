/* The README's C example, compiled by `make firmware-check` against an installed gedge (find_package). */
#include <gedge_engine.h>
#include <stdio.h>

/* 1: reject, 0: accept, -1: error (printed). frame: height x width x 3 bytes at the model's scale. */
int inspect(const char* engine_path, const uint8_t* frame, int height, int width) {
    gedge_engine* engine;
    if (gedge_open(engine_path, GEDGE_OPEN_CUDA_GRAPHS, NULL, &engine) != GEDGE_OK) {
        fprintf(stderr, "%s\n", gedge_last_error()); /* one line: the file and what differs */
        return -1;
    }
    if (*gedge_warning(engine)) fprintf(stderr, "warning: %s\n", gedge_warning(engine));
    float scores[16]; /* gedge_score_count(engine) values: d1 ... score */
    uint8_t rejected = 0;
    gedge_status status = gedge_score_frame(engine, frame, height, width, 3, scores, &rejected);
    if (status != GEDGE_OK) fprintf(stderr, "%s\n", gedge_last_error());
    gedge_close(engine);
    return status == GEDGE_OK ? rejected : -1;
}
