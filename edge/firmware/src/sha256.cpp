#include "gedge/sha256.hpp"

#include <openssl/evp.h>

namespace gedge {

Status sha256_hex(const void* data, size_t size, std::string& hex) {
    if (data == nullptr && size != 0) return Status(Code::argument, "sha256 of a null buffer");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    static const char empty = 0;
    if (EVP_Digest(size ? data : &empty, size, digest, &length, EVP_sha256(), nullptr) != 1 || length != 32)
        return Status(Code::internal, "OpenSSL's SHA-256 failed");
    static const char* digits = "0123456789abcdef";
    hex.assign(64, '0');
    for (unsigned int i = 0; i < length; ++i) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    return Status();
}

}  // namespace gedge
