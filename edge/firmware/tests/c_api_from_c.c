/* The C API used from C (compiled as C99 with -pedantic): open, input shape, score one frame, close. */
#include <stdlib.h>
#include <string.h>

#include "gedge_engine.h"

int gedge_test_c_roundtrip(const char* engine_path, float* first_score, char* message, size_t size) {
    gedge_engine* engine = NULL;
    gedge_input_shape input;
    gedge_status status = gedge_open(engine_path, GEDGE_OPEN_DEFAULT, NULL, &engine);
    uint8_t* frame;
    float* scores;
    uint8_t rejected = 0;
    if (status != GEDGE_OK) {
        strncpy(message, gedge_last_error(), size - 1);
        message[size - 1] = '\0';
        return (int)status;
    }
    gedge_input(engine, &input);
    frame = (uint8_t*)calloc((size_t)(input.height * input.width * input.channels), 1);
    scores = (float*)calloc((size_t)gedge_score_count(engine), sizeof(float));
    status = gedge_score_frame(engine, frame, input.height, input.width, input.channels, scores, &rejected);
    *first_score = scores[0];
    strncpy(message, gedge_last_error(), size - 1);
    message[size - 1] = '\0';
    free(scores);
    free(frame);
    gedge_close(engine);
    return (int)status;
}
