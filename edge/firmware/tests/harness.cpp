#include "harness.hpp"

#include <cstdio>
#include <cstring>
#include <exception>

namespace harness {

namespace {
int failures_in_case = 0;
}

std::vector<Case>& cases() {
    static std::vector<Case> all;
    return all;
}

void failure(const char* file, int line, const std::string& what) {
    ++failures_in_case;
    std::printf("    %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace harness

// gedge_tests [substring]: runs the tests whose name contains the substring (all without one).
int main(int argc, char** argv) {
    const char* filter = argc > 1 ? argv[1] : "";
    int passed = 0, failed = 0;
    for (const harness::Case& test : harness::cases()) {
        if (!std::strstr(test.name, filter)) continue;
        harness::failures_in_case = 0;
        try {
            test.body();
        } catch (const harness::Stop&) {
        } catch (const std::exception& exc) {
            harness::failure(__FILE__, __LINE__, std::string("uncaught exception: ") + exc.what());
        }
        const bool ok = harness::failures_in_case == 0;
        std::printf("[%s] %s\n", ok ? " ok " : "FAIL", test.name);
        (ok ? passed : failed)++;
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
