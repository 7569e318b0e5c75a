// Errors as values: every fallible call of the library returns a Status (a code and one line of message).
#pragma once

#include <string>
#include <utility>

namespace gedge {

// The same numbers as gedge_status in gedge_engine.h.
enum class Code : int {
    ok = 0,
    argument = 1,  // a null pointer, a size out of range, an option that does not apply
    io = 2,        // a file that is missing or cannot be read
    manifest = 3,  // a manifest that is missing, does not parse or does not match the schema
    mismatch = 4,  // the engine and its manifest, or the manifest and this TensorRT/GPU, disagree
    parity = 5,    // the manifest records failed parity and the caller did not allow it
    tensorrt = 6,  // TensorRT refused (deserialise, shapes, enqueue)
    cuda = 7,      // a CUDA runtime call failed
    internal = 8,  // a bug in this library (an exception that should not have happened)
};

class Status {
public:
    Status() = default;  // ok
    Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

    bool ok() const { return code_ == Code::ok; }
    Code code() const { return code_; }
    const std::string& message() const { return message_; }

private:
    Code code_ = Code::ok;
    std::string message_;
};

// "path: problem", the form of gedge's Python errors.
inline Status fail(Code code, const std::string& path, const std::string& problem) {
    return Status(code, path.empty() ? problem : path + ": " + problem);
}

}  // namespace gedge
