#include "fixtures.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gedge/sha256.hpp"
#include "standin_platform.hpp"

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string test_folder(const std::string& name) {
    const std::filesystem::path folder = std::filesystem::path(GEDGE_TEST_TMP) / name;
    std::filesystem::remove_all(folder);
    std::filesystem::create_directories(folder);
    return folder.string();
}

void EngineFiles::write() const {
    nlohmann::json written = manifest;
    if (fix_hash) {
        std::string hex;
        (void)gedge::sha256_hex(plan.data(), plan.size(), hex);
        written["engine_sha256"] = hex;
    }
    write_text(engine, plan);
    write_text(engine + ".json", written.dump(2));
}

EngineFiles standin_engine(const std::string& test, int min_batch, int max_batch) {
    const std::vector<std::string> outputs = {"d1", "d2", "d3", "latent", "d1_local", "d3_local", "score", "amap"};
    EngineFiles files;
    files.engine = test_folder(test) + "/scorer.fp16.engine";
    files.plan = standin::plan_json(8, 8, 3, min_batch, std::min(4, max_batch), max_batch, outputs);
    nlohmann::json& m = files.manifest;
    m = nlohmann::json::parse(read_text(GEDGE_EXAMPLE_MANIFEST));
    m["engine"] = "scorer.fp16.engine";
    m["tensorrt"] = {{"flavour", "tensorrt"}, {"version", "10.3.0.26"}};
    m["target"] = {{"kind", "gpu"}, {"gpu_name", "Orin"}, {"compute_capability", "SM87"}, {"description", "Orin"}};
    m["profile"] = {{"input", "pixels"},
                    {"min", {min_batch, 8, 8, 3}},
                    {"opt", {std::min(4, max_batch), 8, 8, 3}},
                    {"max", {max_batch, 8, 8, 3}}};
    m["input"]["shape"] = {-1, 8, 8, 3};
    m["outputs"] = outputs;
    m["decision"]["threshold"] = 5.0;
    m["threshold"] = 5.0;
    m["model"]["isize"] = 8;
    m["preprocess"] = {{"mode", "patch"}, {"isize", 8}, {"channels", 3}, {"scale", 1.0}, {"stride", 4},
                       {"source_size", nullptr}};
    m["parity"]["engine"] = {{"status", "passed"}};
    files.write();
    return files;
}

std::vector<uint8_t> rows_of(size_t rows, size_t row_bytes, unsigned seed) {
    std::vector<uint8_t> out(rows * row_bytes);
    unsigned state = seed * 2654435761u + 1;
    for (size_t row = 0; row < rows; ++row) {
        const unsigned level = static_cast<unsigned>((row * 37 + seed * 11) % 256);  // a different mean per row
        for (size_t i = 0; i < row_bytes; ++i) {
            state = state * 1103515245u + 12345u;
            out[row * row_bytes + i] = static_cast<uint8_t>((level + ((state >> 16) % 32)) % 256);
        }
    }
    return out;
}
