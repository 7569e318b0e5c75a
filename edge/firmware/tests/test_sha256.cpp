#include <string>

#include "gedge/sha256.hpp"
#include "harness.hpp"

namespace {
std::string digest(const std::string& text) {
    std::string hex;
    REQUIRE_OK(gedge::sha256_hex(text.data(), text.size(), hex));
    return hex;
}
}  // namespace

TEST(sha256_matches_the_published_test_vectors) {  // FIPS 180-2 examples
    CHECK_EQ(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_EQ(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_EQ(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK_EQ(digest(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(sha256_of_a_null_buffer_is_an_argument_error) {
    std::string hex;
    CHECK(gedge::sha256_hex(nullptr, 3, hex).code() == gedge::Code::argument);
    REQUIRE_OK(gedge::sha256_hex(nullptr, 0, hex));
    CHECK_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
