#include <vector>

#include "gedge/batching.hpp"
#include "harness.hpp"

namespace {
struct Expect {
    size_t start, count, padded;
};
void chunks_are(const std::vector<gedge::Chunk>& got, const std::vector<Expect>& want) {
    CHECK_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        CHECK_EQ(got[i].start, want[i].start);
        CHECK_EQ(got[i].count, want[i].count);
        CHECK_EQ(got[i].padded, want[i].padded);
    }
}
}  // namespace

TEST(batches_split_at_the_profile_maximum_and_pad_to_its_minimum) {
    chunks_are(gedge::split_batches(0, 1, 4), {});
    chunks_are(gedge::split_batches(4, 1, 4), {{0, 4, 4}});
    chunks_are(gedge::split_batches(10, 1, 4), {{0, 4, 4}, {4, 4, 4}, {8, 2, 2}});
    chunks_are(gedge::split_batches(9, 3, 4), {{0, 4, 4}, {4, 4, 4}, {8, 1, 3}});
    chunks_are(gedge::split_batches(2, 8, 4), {{0, 2, 4}});  // a minimum above the maximum is capped
    chunks_are(gedge::split_batches(3, 0, 32), {{0, 3, 3}});
    CHECK(gedge::split_batches(5, 1, 0).empty());
}

TEST(rows_are_packed_and_padded_with_the_last_row) {
    const std::vector<uint8_t> rows = {1, 2, 3, 4, 5, 6};  // three rows of two bytes
    std::vector<uint8_t> packed(5 * 2, 0);
    gedge::pack_rows(rows.data(), 3, 5, 2, packed.data());
    CHECK(packed == std::vector<uint8_t>({1, 2, 3, 4, 5, 6, 5, 6, 5, 6}));
}

TEST(tile_origins_follow_gedge_data) {  // gedge.data.tile_origins
    CHECK(gedge::tile_origins(64, 32, 16) == std::vector<int>({0, 16, 32}));
    CHECK(gedge::tile_origins(70, 32, 16) == std::vector<int>({0, 16, 32, 38}));
    CHECK(gedge::tile_origins(32, 32, 16) == std::vector<int>({0}));
    CHECK(gedge::tile_origins(20, 32, 16) == std::vector<int>({0}));
    CHECK(gedge::tile_origins(256, 32, 32) == std::vector<int>({0, 32, 64, 96, 128, 160, 192, 224}));
}

TEST(frames_are_cut_into_tiles_in_row_major_order) {
    // A 3x4 one-channel frame with value 10*y + x, tiles of 2 every 2 -> origins y {0, 1}, x {0, 2}.
    std::vector<uint8_t> frame;
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x) frame.push_back(static_cast<uint8_t>(10 * y + x));
    std::vector<uint8_t> tiles;
    size_t count = 0;
    REQUIRE_OK(gedge::cut_tiles(frame.data(), 3, 4, 1, 2, 2, tiles, count));
    CHECK_EQ(count, 4u);
    CHECK(tiles == std::vector<uint8_t>({0, 1, 10, 11, 2, 3, 12, 13, 10, 11, 20, 21, 12, 13, 22, 23}));

    std::vector<uint8_t> rgb(2 * 2 * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i);
    REQUIRE_OK(gedge::cut_tiles(rgb.data(), 2, 2, 3, 2, 1, tiles, count));
    CHECK_EQ(count, 1u);
    CHECK(tiles == rgb);
}

TEST(frames_smaller_than_a_tile_are_mirrored_to_one_tile) {
    // A 3x2 frame (values 0..5 row-major) padded to 4x4 as numpy.pad(..., ((0, 1), (1, 1)), "symmetric") does.
    const std::vector<uint8_t> frame = {0, 1, 2, 3, 4, 5};
    std::vector<uint8_t> tiles;
    size_t count = 0;
    REQUIRE_OK(gedge::cut_tiles(frame.data(), 3, 2, 1, 4, 2, tiles, count));
    CHECK_EQ(count, size_t{1});
    const std::vector<uint8_t> expected = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 4, 4, 5, 5};
    CHECK(tiles == expected);
    // Less than half a tile: the edge pixel is repeated ("edge" mode), e.g. one pixel to a 3x3 tile.
    const uint8_t dot = 7;
    REQUIRE_OK(gedge::cut_tiles(&dot, 1, 1, 1, 3, 1, tiles, count));
    CHECK(tiles == std::vector<uint8_t>(9, 7));
    CHECK(gedge::cut_tiles(nullptr, 20, 20, 3, 8, 4, tiles, count).code() == gedge::Code::argument);
}
