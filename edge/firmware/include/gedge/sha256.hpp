// SHA-256 (OpenSSL's EVP interface) as lowercase hex, the form gedge's manifests record.
#pragma once

#include <cstddef>
#include <string>

#include "gedge/status.hpp"

namespace gedge {

Status sha256_hex(const void* data, size_t size, std::string& hex);

}  // namespace gedge
