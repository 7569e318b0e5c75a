// Stand-ins for TensorRT and the CUDA runtime, behind the library's platform seam. They behave like the real
// thing where it matters to the library and report misuse instead of returning success:
//  * work queued on a stream (copies, enqueueV3) runs only at synchronize: host results are stale until then;
//  * async copies need pinned host memory (host_alloc) and device ranges inside one allocation;
//  * enqueue needs every tensor bound to a large enough device buffer and an input shape inside the profile;
//  * a stream being captured cannot be synchronised; a graph replays what it captured (including the batch);
//  * freeing or destroying something still used by queued work, double frees and leaks are recorded;
//  * any call can be made to fail (fail_next), to check that the library looks at every return code.
// A "plan" is JSON naming the input, its per-row shape, the profile and the outputs; the engine's outputs are
// simple functions of the input bytes so tests can check order, splitting and padding.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gedge/platform.hpp"

namespace standin {

// The plan the tests write as an engine file.
std::string plan_json(int height, int width, int channels, int min_batch, int opt_batch, int max_batch,
                      const std::vector<std::string>& outputs, const std::string& input_name = "pixels",
                      const std::string& input_dtype = "uint8", const std::string& output_dtype = "float32");

// What the stand-in engine computes for one input row (the mean byte / 255) and each output from it.
float row_mean(const uint8_t* row, size_t bytes);
float output_value(const std::string& output, size_t index, float mean);

class Platform final : public gedge::Platform {
public:
    Platform();
    ~Platform() override;

    // Configuration.
    int32_t version = 100300;  // getInferLibVersion's number: 10.3.0
    gedge::GpuInfo gpu_info{"Orin", 8, 7};
    void fail_next(const std::string& call, int after = 0);  // the (after+1)-th next call of `call` fails

    // Observations.
    std::vector<std::string> misuse;  // empty when the library used everything correctly
    std::map<std::string, int> calls;
    int live_host() const { return static_cast<int>(host_.size()); }
    int live_device() const { return static_cast<int>(device_.size()); }
    int live_streams() const { return static_cast<int>(streams_.size()); }
    int live_graphs() const { return static_cast<int>(graphs_.size()); }
    static int live_models;
    static int live_contexts;
    std::vector<size_t> enqueued_batches;  // the batch of every enqueueV3 that ran, in order
    int graph_launches = 0;

    // The seam.
    int32_t tensorrt_version() override;
    gedge::Status gpu(gedge::GpuInfo& out) override;
    gedge::Status deserialize(const void* plan, size_t size, std::unique_ptr<gedge::EngineModel>& out) override;
    gedge::Status host_alloc(size_t bytes, void** out) override;
    void host_free(void* pointer) override;
    gedge::Status device_alloc(size_t bytes, void** out) override;
    void device_free(void* pointer) override;
    gedge::Status stream_create(gedge::StreamHandle* out) override;
    void stream_destroy(gedge::StreamHandle stream) override;
    gedge::Status copy_to_device(void* device, const void* host, size_t bytes, gedge::StreamHandle stream) override;
    gedge::Status copy_to_host(void* host, const void* device, size_t bytes, gedge::StreamHandle stream) override;
    gedge::Status synchronize(gedge::StreamHandle stream) override;
    gedge::Status capture_begin(gedge::StreamHandle stream) override;
    gedge::Status capture_end(gedge::StreamHandle stream, gedge::GraphHandle* out) override;
    gedge::Status graph_launch(gedge::GraphHandle graph, gedge::StreamHandle stream) override;
    void graph_destroy(gedge::GraphHandle graph) override;

    // Used by the stand-in model and context.
    struct Op {
        std::string what;
        std::vector<uintptr_t> uses;  // device buffers (bases) and host pointers it touches
        std::function<gedge::Status(bool replayed)> run;  // replayed: launched from a CUDA graph
    };
    bool failing(const std::string& call);  // counts the call; true when a failure was asked for
    gedge::Status queue(gedge::StreamHandle stream, Op op, bool replayed = false);
    uint8_t* device_bytes(const void* device, size_t bytes, const std::string& what);  // nullptr + misuse if bad
    void note(const std::string& problem) { misuse.push_back(problem); }

private:
    struct Queued {
        Op op;
        bool replayed = false;
    };
    struct Stream {
        std::deque<Queued> queued;
        bool capturing = false;
        std::vector<Op> captured;
    };
    struct Graph {
        std::vector<Op> ops;
    };
    Stream* find_stream(gedge::StreamHandle handle, const char* call);
    bool pinned(const void* host, size_t bytes) const;
    bool in_use(uintptr_t pointer) const;

    std::map<std::string, int> fail_after_;
    std::map<uintptr_t, size_t> host_;                  // pinned blocks
    std::map<uintptr_t, std::vector<uint8_t>> device_;  // fake device addresses -> storage
    uintptr_t next_device_ = 0x7e0000000000;
    std::set<Stream*> streams_;
    std::set<Graph*> graphs_;
};

}  // namespace standin

namespace standin {
// The stand-in that gedge::default_platform() returns in test builds (the C API's platform there).
Platform& shared();
}  // namespace standin
