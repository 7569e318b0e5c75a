// A small test harness (no framework dependency): TEST registers a function, CHECK records a failure and goes on,
// REQUIRE stops the test. main() in harness.cpp runs them and ends with "N passed, M failed".
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace harness {

struct Case {
    const char* name;
    std::function<void()> body;
};

std::vector<Case>& cases();
void failure(const char* file, int line, const std::string& what);
struct Stop {};  // thrown by REQUIRE to leave the test

struct Register {
    Register(const char* name, std::function<void()> body) { cases().push_back({name, std::move(body)}); }
};

template <typename A, typename B>
std::string describe(const A& a, const B& b) {
    std::ostringstream out;
    out << a << " vs " << b;
    return out.str();
}

}  // namespace harness

#define HARNESS_JOIN2(a, b) a##b
#define HARNESS_JOIN(a, b) HARNESS_JOIN2(a, b)
#define TEST(name)                                                               \
    static void name();                                                          \
    static harness::Register HARNESS_JOIN(register_, name)(#name, name);         \
    static void name()
#define CHECK(cond) \
    ((cond) ? (void)0 : harness::failure(__FILE__, __LINE__, "CHECK(" #cond ")"))
#define CHECK_EQ(a, b)                                                                                    \
    (((a) == (b)) ? (void)0                                                                               \
                  : harness::failure(__FILE__, __LINE__,                                                  \
                                     "CHECK_EQ(" #a ", " #b "): " + harness::describe((a), (b))))
#define REQUIRE(cond)                                                           \
    do {                                                                        \
        if (!(cond)) {                                                          \
            harness::failure(__FILE__, __LINE__, "REQUIRE(" #cond ")");         \
            throw harness::Stop();                                              \
        }                                                                       \
    } while (0)
// A gedge::Status that must be ok; prints its message otherwise.
#define REQUIRE_OK(expr)                                                                        \
    do {                                                                                        \
        const gedge::Status harness_status = (expr);                                            \
        if (!harness_status.ok()) {                                                             \
            harness::failure(__FILE__, __LINE__, #expr " failed: " + harness_status.message()); \
            throw harness::Stop();                                                              \
        }                                                                                       \
    } while (0)
