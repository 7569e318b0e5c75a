#include "gedge/batching.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace gedge {

std::vector<Chunk> split_batches(size_t n, size_t min_batch, size_t max_batch) {
    std::vector<Chunk> chunks;
    if (max_batch == 0) return chunks;
    min_batch = std::min(std::max<size_t>(min_batch, 1), max_batch);
    for (size_t start = 0; start < n; start += max_batch) {
        Chunk chunk;
        chunk.start = start;
        chunk.count = std::min(max_batch, n - start);
        chunk.padded = std::max(chunk.count, min_batch);
        chunks.push_back(chunk);
    }
    return chunks;
}

void pack_rows(const uint8_t* src, size_t count, size_t padded, size_t row_bytes, uint8_t* dst) {
    if (count == 0) return;
    std::memcpy(dst, src, count * row_bytes);
    for (size_t row = count; row < padded; ++row)
        std::memcpy(dst + row * row_bytes, src + (count - 1) * row_bytes, row_bytes);
}

std::vector<int> tile_origins(int length, int tile, int stride) {
    if (length <= tile || stride < 1) return {0};
    std::vector<int> starts;
    for (int at = 0; at <= length - tile; at += stride) starts.push_back(at);
    if (starts.back() != length - tile) starts.push_back(length - tile);
    return starts;
}

namespace {

// The source index of padded position `at` along an axis of `length` padded by `before` (numpy's np.pad modes:
// "symmetric" mirrors the edge row in, "edge" repeats it).
int padded_source(int at, int before, int length, bool symmetric) {
    int i = at - before;
    if (!symmetric) return std::min(std::max(i, 0), length - 1);
    if (i < 0) i = -i - 1;
    if (i >= length) i = 2 * length - i - 1;
    return std::min(std::max(i, 0), length - 1);
}

}  // namespace

std::vector<uint8_t> pad_frame(const uint8_t* frame, int height, int width, int channels, int side, int& padded_height,
                               int& padded_width) {
    const int extra_h = std::max(0, side - height), extra_w = std::max(0, side - width);
    const bool symmetric = extra_h <= height && extra_w <= width;
    padded_height = height + extra_h;
    padded_width = width + extra_w;
    std::vector<uint8_t> out(static_cast<size_t>(padded_height) * padded_width * channels);
    for (int y = 0; y < padded_height; ++y) {
        const int sy = padded_source(y, extra_h / 2, height, symmetric);
        for (int x = 0; x < padded_width; ++x) {
            const int sx = padded_source(x, extra_w / 2, width, symmetric);
            std::memcpy(out.data() + (static_cast<size_t>(y) * padded_width + x) * channels,
                        frame + (static_cast<size_t>(sy) * width + sx) * channels, static_cast<size_t>(channels));
        }
    }
    return out;
}

Status cut_tiles(const uint8_t* frame, int height, int width, int channels, int tile, int stride,
                 std::vector<uint8_t>& tiles, size_t& count) {
    if (frame == nullptr || height < 1 || width < 1 || channels < 1 || tile < 1 || stride < 1)
        return Status(Code::argument, "cut_tiles: a null frame or a size below 1");
    std::vector<uint8_t> padded;
    if (height < tile || width < tile) {  // smaller than a tile: mirrored to one tile, as gedge's Python pads it
        padded = pad_frame(frame, height, width, channels, tile, height, width);
        frame = padded.data();
    }
    const std::vector<int> ys = tile_origins(height, tile, stride), xs = tile_origins(width, tile, stride);
    const size_t frame_row = static_cast<size_t>(width) * channels, tile_row = static_cast<size_t>(tile) * channels;
    count = ys.size() * xs.size();
    tiles.resize(count * tile_row * tile);
    uint8_t* out = tiles.data();
    for (int y : ys)
        for (int x : xs)
            for (int row = 0; row < tile; ++row, out += tile_row)
                std::memcpy(out, frame + (static_cast<size_t>(y) + row) * frame_row + static_cast<size_t>(x) * channels,
                            tile_row);
    return Status();
}

}  // namespace gedge
