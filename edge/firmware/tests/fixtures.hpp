// Test fixtures: a stand-in engine file and its manifest (made from the docs' example manifest, so that example is
// what every engine test reads), written into a per-test folder under the build tree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct EngineFiles {
    std::string engine;         // path of the engine file
    std::string plan;           // the stand-in plan written as the engine
    nlohmann::json manifest;    // written next to it as <engine>.json
    bool fix_hash = true;       // write the plan's sha256 into the manifest

    void write() const;
};

// A fresh folder for one test.
std::string test_folder(const std::string& name);

// An 8x8x3 engine, profile 1/4/4, outputs d1 d2 d3 latent d1_local d3_local score amap, threshold 5 (the stand-in's
// score is 10 x the mean byte / 255), patch preprocessing with stride 4 at scale 1, parity passed.
EngineFiles standin_engine(const std::string& test, int min_batch = 1, int max_batch = 4);

// `rows` inputs of `row_bytes` with distinct, deterministic contents.
std::vector<uint8_t> rows_of(size_t rows, size_t row_bytes, unsigned seed = 1);

std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);
