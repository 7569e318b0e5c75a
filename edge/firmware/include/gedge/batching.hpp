// Pure helpers of the scoring path: batches split at the profile's maximum, rows packed into the pinned input
// (padded to the profile's minimum), and frames cut into tiles the way gedge's Python does (edge/data.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gedge/status.hpp"

namespace gedge {

struct Chunk {
    size_t start = 0;   // first input of the chunk
    size_t count = 0;   // inputs of the chunk
    size_t padded = 0;  // rows enqueued: count raised to the profile's minimum batch
};

// Chunks of at most max_batch inputs, in order; each padded up to min_batch. Empty for n == 0.
std::vector<Chunk> split_batches(size_t n, size_t min_batch, size_t max_batch);

// Copy `count` rows of `row_bytes` into dst and fill rows count..padded-1 with copies of the last row.
void pack_rows(const uint8_t* src, size_t count, size_t padded, size_t row_bytes, uint8_t* dst);

// Tile start offsets covering `length` with tiles of `tile` every `stride`; the last tile is flush with the end
// (gedge.data.tile_origins).
std::vector<int> tile_origins(int length, int tile, int stride);

// A frame grown to at least side x side by mirroring its edges, centred (gedge.data.tiles.pad_to: numpy's
// "symmetric" padding, or "edge" where a frame is less than half a tile); the new size in padded_height/_width.
std::vector<uint8_t> pad_frame(const uint8_t* frame, int height, int width, int channels, int side, int& padded_height,
                               int& padded_width);

// All tiles of an HxWxC uint8 frame, row-major over (y, x) origins, as N x tile x tile x C (gedge.data.tile_grid);
// a frame smaller than a tile is padded to one first (pad_frame).
Status cut_tiles(const uint8_t* frame, int height, int width, int channels, int tile, int stride,
                 std::vector<uint8_t>& tiles, size_t& count);

}  // namespace gedge
