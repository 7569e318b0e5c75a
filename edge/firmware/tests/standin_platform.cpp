#include "standin_platform.hpp"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

namespace standin {

using gedge::Code;
using gedge::Status;

int Platform::live_models = 0;
int Platform::live_contexts = 0;

std::string plan_json(int height, int width, int channels, int min_batch, int opt_batch, int max_batch,
                      const std::vector<std::string>& outputs, const std::string& input_name,
                      const std::string& input_dtype, const std::string& output_dtype) {
    nlohmann::json plan = {{"standin_plan", 1},       {"input", input_name},     {"row", {height, width, channels}},
                           {"profile", {min_batch, opt_batch, max_batch}}, {"outputs", outputs},
                           {"input_dtype", input_dtype}, {"output_dtype", output_dtype}};
    return plan.dump();
}

float row_mean(const uint8_t* row, size_t bytes) {
    double sum = 0;
    for (size_t i = 0; i < bytes; ++i) sum += row[i];
    return static_cast<float>(sum / (static_cast<double>(bytes) * 255.0));
}

float output_value(const std::string& output, size_t index, float mean) {
    return output == "score" ? 10.0f * mean : mean + static_cast<float>(index);
}

namespace {

gedge::DType dtype_of(const std::string& name) {
    if (name == "uint8") return gedge::DType::u8;
    if (name == "float32") return gedge::DType::f32;
    if (name == "float16") return gedge::DType::f16;
    return gedge::DType::other;
}

struct Plan {
    std::string input;
    int64_t height = 0, width = 0, channels = 0;
    int64_t min_batch = 0, opt_batch = 0, max_batch = 0;
    std::vector<std::string> outputs;
    gedge::DType input_dtype = gedge::DType::u8, output_dtype = gedge::DType::f32;
    size_t row_bytes() const { return static_cast<size_t>(height * width * channels); }
    size_t per_input(const std::string& output) const {
        return output == "amap" ? static_cast<size_t>(height * width) : 1;
    }
};

// What a context knows; shared with the work it queued so that work can tell when the context is gone.
struct ContextState {
    Plan plan;
    int profile = -1;
    size_t batch = 0;
    std::map<std::string, void*> addresses;
};

class Context final : public gedge::ExecutionContext {
public:
    Context(Platform& platform, const Plan& plan) : platform_(platform), state_(std::make_shared<ContextState>()) {
        state_->plan = plan;
        ++Platform::live_contexts;
    }
    ~Context() override { --Platform::live_contexts; }

    Status set_profile(int index, gedge::StreamHandle) override {
        if (platform_.failing("set_profile")) return Status(Code::tensorrt, "setOptimizationProfileAsync failed (injected)");
        if (index != 0) return Status(Code::tensorrt, "setOptimizationProfileAsync: no profile " + std::to_string(index));
        state_->profile = index;
        return Status();
    }

    Status set_input_shape(const std::string& name, const std::vector<int64_t>& dims) override {
        if (platform_.failing("set_input_shape")) return Status(Code::tensorrt, "setInputShape failed (injected)");
        const Plan& plan = state_->plan;
        if (name != plan.input) return Status(Code::tensorrt, "setInputShape: no input " + name);
        if (dims.size() != 4 || dims[1] != plan.height || dims[2] != plan.width || dims[3] != plan.channels ||
            dims[0] < plan.min_batch || dims[0] > plan.max_batch) {
            platform_.note("setInputShape outside the profile: batch " + std::to_string(dims.empty() ? -1 : dims[0]));
            return Status(Code::tensorrt, "setInputShape: shape outside the optimisation profile");
        }
        state_->batch = static_cast<size_t>(dims[0]);
        return Status();
    }

    Status tensor_shape(const std::string& name, std::vector<int64_t>& dims) override {
        if (platform_.failing("tensor_shape")) return Status(Code::tensorrt, "getTensorShape failed (injected)");
        const Plan& plan = state_->plan;
        const int64_t batch = state_->batch ? static_cast<int64_t>(state_->batch) : -1;
        if (name == plan.input) {
            dims = {batch, plan.height, plan.width, plan.channels};
        } else if (std::find(plan.outputs.begin(), plan.outputs.end(), name) != plan.outputs.end()) {
            dims = name == "amap" ? std::vector<int64_t>{batch, plan.height, plan.width} : std::vector<int64_t>{batch};
        } else {
            return Status(Code::tensorrt, "getTensorShape: no tensor " + name);
        }
        return Status();
    }

    Status set_address(const std::string& name, void* device) override {
        if (platform_.failing("set_address")) return Status(Code::tensorrt, "setTensorAddress failed (injected)");
        const Plan& plan = state_->plan;
        if (name != plan.input && std::find(plan.outputs.begin(), plan.outputs.end(), name) == plan.outputs.end())
            return Status(Code::tensorrt, "setTensorAddress: no tensor " + name);
        if (!platform_.device_bytes(device, 1, "setTensorAddress(" + name + ")"))
            return Status(Code::tensorrt, "setTensorAddress: not device memory");
        state_->addresses[name] = device;
        return Status();
    }

    Status enqueue(gedge::StreamHandle stream) override {
        if (platform_.failing("enqueue")) return Status(Code::tensorrt, "enqueueV3 failed (injected)");
        const Plan& plan = state_->plan;
        const size_t batch = state_->batch;
        if (batch == 0) {
            platform_.note("enqueueV3 before setInputShape");
            return Status(Code::tensorrt, "enqueueV3: input shape not set");
        }
        std::vector<std::string> names = plan.outputs;
        names.push_back(plan.input);
        Platform::Op op;
        op.what = "enqueueV3";
        for (const std::string& name : names) {
            auto at = state_->addresses.find(name);
            if (at == state_->addresses.end()) {
                platform_.note("enqueueV3 with " + name + " unbound");
                return Status(Code::tensorrt, "enqueueV3: tensor " + name + " has no address");
            }
            const size_t bytes = name == plan.input ? batch * plan.row_bytes() : batch * plan.per_input(name) * 4;
            if (!platform_.device_bytes(at->second, bytes, "enqueueV3 buffer of " + name))
                return Status(Code::tensorrt, "enqueueV3: buffer of " + name + " too small");
            op.uses.push_back(reinterpret_cast<uintptr_t>(at->second));
        }
        std::weak_ptr<ContextState> weak = state_;
        std::map<std::string, void*> addresses = state_->addresses;
        Platform* platform = &platform_;
        op.run = [platform, weak, addresses, batch, plan](bool replayed) {
            auto state = weak.lock();
            if (!state) {
                platform->note("enqueued work ran after its execution context was destroyed");
                return Status(Code::cuda, "context destroyed");
            }
            if (replayed && state->batch != batch)
                platform->note("a graph captured at batch " + std::to_string(batch) + " replayed while the input shape is " +
                               std::to_string(state->batch));
            const uint8_t* input = platform->device_bytes(addresses.at(plan.input), batch * plan.row_bytes(), "input");
            if (!input) return Status(Code::cuda, "bad input buffer");
            for (size_t k = 0; k < plan.outputs.size(); ++k) {
                const std::string& name = plan.outputs[k];
                const size_t per = plan.per_input(name);
                auto* out = reinterpret_cast<float*>(
                    platform->device_bytes(addresses.at(name), batch * per * sizeof(float), name));
                if (!out) return Status(Code::cuda, "bad output buffer");
                for (size_t row = 0; row < batch; ++row) {
                    const uint8_t* pixels = input + row * plan.row_bytes();
                    if (per == 1) {
                        out[row] = output_value(name, k, row_mean(pixels, plan.row_bytes()));
                        continue;
                    }
                    for (size_t p = 0; p < per; ++p)  // amap: per-pixel mean over channels
                        out[row * per + p] = row_mean(pixels + p * plan.channels, static_cast<size_t>(plan.channels));
                }
            }
            platform->enqueued_batches.push_back(batch);
            return Status();
        };
        return platform_.queue(stream, std::move(op));
    }

private:
    Platform& platform_;
    std::shared_ptr<ContextState> state_;
};

class Model final : public gedge::EngineModel {
public:
    Model(Platform& platform, Plan plan) : platform_(platform), plan_(std::move(plan)) { ++Platform::live_models; }
    ~Model() override { --Platform::live_models; }

    std::vector<gedge::TensorDesc> tensors() const override {
        std::vector<gedge::TensorDesc> out;
        out.push_back({plan_.input, true, plan_.input_dtype, {-1, plan_.height, plan_.width, plan_.channels}});
        for (const std::string& name : plan_.outputs)
            out.push_back({name, false, plan_.output_dtype,
                           name == "amap" ? std::vector<int64_t>{-1, plan_.height, plan_.width} : std::vector<int64_t>{-1}});
        return out;
    }

    int profiles() const override { return 1; }

    Status profile_shape(const std::string& input, int profile, std::vector<int64_t>& min, std::vector<int64_t>& opt,
                         std::vector<int64_t>& max) const override {
        if (platform_.failing("profile_shape")) return Status(Code::tensorrt, "getProfileShape failed (injected)");
        if (input != plan_.input || profile != 0) return Status(Code::tensorrt, "getProfileShape: no such input/profile");
        min = {plan_.min_batch, plan_.height, plan_.width, plan_.channels};
        opt = {plan_.opt_batch, plan_.height, plan_.width, plan_.channels};
        max = {plan_.max_batch, plan_.height, plan_.width, plan_.channels};
        return Status();
    }

    Status create_context(std::unique_ptr<gedge::ExecutionContext>& out) override {
        if (platform_.failing("create_context")) return Status(Code::tensorrt, "createExecutionContext failed (injected)");
        out = std::make_unique<Context>(platform_, plan_);
        return Status();
    }

private:
    Platform& platform_;
    Plan plan_;
};

}  // namespace

Platform::Platform() = default;

Platform::~Platform() {
    for (Stream* stream : streams_) delete stream;
    for (Graph* graph : graphs_) delete graph;
    for (auto& block : host_) std::free(reinterpret_cast<void*>(block.first));
}

void Platform::fail_next(const std::string& call, int after) { fail_after_[call] = after; }

bool Platform::failing(const std::string& call) {
    ++calls[call];
    auto at = fail_after_.find(call);
    if (at == fail_after_.end()) return false;
    if (at->second-- > 0) return false;
    fail_after_.erase(at);
    return true;
}

int32_t Platform::tensorrt_version() {
    ++calls["tensorrt_version"];
    return version;
}

Status Platform::gpu(gedge::GpuInfo& out) {
    if (failing("gpu")) return Status(Code::cuda, "cudaGetDevice failed: cudaErrorNoDevice (injected)");
    out = gpu_info;
    return Status();
}

Status Platform::deserialize(const void* plan, size_t size, std::unique_ptr<gedge::EngineModel>& out) {
    if (failing("deserialize")) return Status(Code::tensorrt, "deserializeCudaEngine failed (injected)");
    nlohmann::json doc = nlohmann::json::parse(static_cast<const char*>(plan), static_cast<const char*>(plan) + size,
                                               nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || doc.value("standin_plan", 0) != 1)
        return Status(Code::tensorrt, "deserializeCudaEngine failed: not a plan");
    Plan parsed;
    parsed.input = doc["input"].get<std::string>();
    parsed.height = doc["row"][0];
    parsed.width = doc["row"][1];
    parsed.channels = doc["row"][2];
    parsed.min_batch = doc["profile"][0];
    parsed.opt_batch = doc["profile"][1];
    parsed.max_batch = doc["profile"][2];
    parsed.outputs = doc["outputs"].get<std::vector<std::string>>();
    parsed.input_dtype = dtype_of(doc["input_dtype"].get<std::string>());
    parsed.output_dtype = dtype_of(doc["output_dtype"].get<std::string>());
    out = std::make_unique<Model>(*this, std::move(parsed));
    return Status();
}

Status Platform::host_alloc(size_t bytes, void** out) {
    if (failing("host_alloc")) return Status(Code::cuda, "cudaMallocHost failed: cudaErrorMemoryAllocation (injected)");
    if (bytes == 0) note("cudaMallocHost of 0 bytes");
    void* block = std::malloc(bytes ? bytes : 1);
    host_[reinterpret_cast<uintptr_t>(block)] = bytes;
    *out = block;
    return Status();
}

void Platform::host_free(void* pointer) {
    ++calls["host_free"];
    auto at = host_.find(reinterpret_cast<uintptr_t>(pointer));
    if (at == host_.end()) return note("cudaFreeHost of memory that is not pinned (or freed twice)");
    if (in_use(at->first)) note("pinned memory freed while queued work uses it");
    std::free(pointer);
    host_.erase(at);
}

Status Platform::device_alloc(size_t bytes, void** out) {
    if (failing("device_alloc")) return Status(Code::cuda, "cudaMalloc failed: cudaErrorMemoryAllocation (injected)");
    if (bytes == 0) note("cudaMalloc of 0 bytes");
    const uintptr_t address = next_device_;
    next_device_ += ((bytes >> 20) + 1) << 20;  // never dereferenceable on the host: a fake address range
    device_[address].assign(bytes, 0xAB);       // garbage until written, like fresh device memory
    *out = reinterpret_cast<void*>(address);
    return Status();
}

void Platform::device_free(void* pointer) {
    ++calls["device_free"];
    auto at = device_.find(reinterpret_cast<uintptr_t>(pointer));
    if (at == device_.end()) return note("cudaFree of memory that is not a device allocation (or freed twice)");
    if (in_use(at->first)) note("device memory freed while queued work uses it");
    device_.erase(at);
}

Status Platform::stream_create(gedge::StreamHandle* out) {
    if (failing("stream_create")) return Status(Code::cuda, "cudaStreamCreateWithFlags failed (injected)");
    Stream* stream = new Stream();
    streams_.insert(stream);
    *out = stream;
    return Status();
}

void Platform::stream_destroy(gedge::StreamHandle handle) {
    ++calls["stream_destroy"];
    Stream* stream = static_cast<Stream*>(handle);
    if (!streams_.count(stream)) return note("cudaStreamDestroy of an unknown stream");
    if (!stream->queued.empty()) note("stream destroyed with work still queued");
    if (stream->capturing) note("stream destroyed while capturing");
    streams_.erase(stream);
    delete stream;
}

Platform::Stream* Platform::find_stream(gedge::StreamHandle handle, const char* call) {
    Stream* stream = static_cast<Stream*>(handle);
    if (!streams_.count(stream)) {
        note(std::string(call) + " on an unknown or destroyed stream");
        return nullptr;
    }
    return stream;
}

bool Platform::pinned(const void* host, size_t bytes) const {
    const auto address = reinterpret_cast<uintptr_t>(host);
    auto at = host_.upper_bound(address);
    if (at == host_.begin()) return false;
    --at;
    return address >= at->first && address + bytes <= at->first + at->second;
}

bool Platform::in_use(uintptr_t pointer) const {
    for (Stream* stream : streams_)
        for (const Queued& item : stream->queued)
            if (std::find(item.op.uses.begin(), item.op.uses.end(), pointer) != item.op.uses.end()) return true;
    return false;
}

uint8_t* Platform::device_bytes(const void* device, size_t bytes, const std::string& what) {
    const auto address = reinterpret_cast<uintptr_t>(device);
    auto at = device_.upper_bound(address);
    if (at != device_.begin()) {
        --at;
        if (address >= at->first && address + bytes <= at->first + at->second.size())
            return at->second.data() + (address - at->first);
    }
    note(what + ": not inside one device allocation (" + std::to_string(bytes) + " bytes)");
    return nullptr;
}

Status Platform::queue(gedge::StreamHandle handle, Op op, bool replayed) {
    Stream* stream = find_stream(handle, op.what.c_str());
    if (!stream) return Status(Code::cuda, "invalid stream");
    if (stream->capturing)
        stream->captured.push_back(std::move(op));
    else
        stream->queued.push_back({std::move(op), replayed});
    return Status();
}

Status Platform::copy_to_device(void* device, const void* host, size_t bytes, gedge::StreamHandle stream) {
    if (failing("copy_to_device")) return Status(Code::cuda, "cudaMemcpyAsync failed (injected)");
    if (!pinned(host, bytes)) note("host-to-device copy from pageable memory (not from host_alloc)");
    if (!device_bytes(device, bytes, "host-to-device copy")) return Status(Code::cuda, "cudaErrorInvalidValue");
    Op op;
    op.what = "copy_to_device";
    op.uses = {reinterpret_cast<uintptr_t>(device), reinterpret_cast<uintptr_t>(host)};
    op.run = [this, device, host, bytes](bool) {  // reads the host memory when it runs, as a real async copy does
        uint8_t* target = device_bytes(device, bytes, "host-to-device copy");
        if (!target || !pinned(host, bytes)) return Status(Code::cuda, "copy source or target freed");
        std::memcpy(target, host, bytes);
        return Status();
    };
    return queue(stream, std::move(op));
}

Status Platform::copy_to_host(void* host, const void* device, size_t bytes, gedge::StreamHandle stream) {
    if (failing("copy_to_host")) return Status(Code::cuda, "cudaMemcpyAsync failed (injected)");
    if (!pinned(host, bytes)) note("device-to-host copy into pageable memory (not from host_alloc)");
    if (!device_bytes(device, bytes, "device-to-host copy")) return Status(Code::cuda, "cudaErrorInvalidValue");
    Op op;
    op.what = "copy_to_host";
    op.uses = {reinterpret_cast<uintptr_t>(device), reinterpret_cast<uintptr_t>(host)};
    op.run = [this, device, host, bytes](bool) {
        const uint8_t* source = device_bytes(device, bytes, "device-to-host copy");
        if (!source || !pinned(host, bytes)) return Status(Code::cuda, "copy source or target freed");
        std::memcpy(host, source, bytes);
        return Status();
    };
    return queue(stream, std::move(op));
}

Status Platform::synchronize(gedge::StreamHandle handle) {
    if (failing("synchronize")) {  // like a kernel fault: the queued work is lost
        if (Stream* stream = find_stream(handle, "synchronize")) stream->queued.clear();
        return Status(Code::cuda, "cudaStreamSynchronize failed: cudaErrorLaunchFailure (injected)");
    }
    Stream* stream = find_stream(handle, "cudaStreamSynchronize");
    if (!stream) return Status(Code::cuda, "invalid stream");
    if (stream->capturing) {
        note("cudaStreamSynchronize on a stream that is being captured");
        return Status(Code::cuda, "cudaErrorStreamCaptureUnsupported");
    }
    Status first;
    while (!stream->queued.empty()) {
        Queued item = std::move(stream->queued.front());
        stream->queued.pop_front();
        Status status = item.op.run(item.replayed);
        if (first.ok() && !status.ok()) first = status;
    }
    return first;
}

Status Platform::capture_begin(gedge::StreamHandle handle) {
    if (failing("capture_begin")) return Status(Code::cuda, "cudaStreamBeginCapture failed (injected)");
    Stream* stream = find_stream(handle, "cudaStreamBeginCapture");
    if (!stream) return Status(Code::cuda, "invalid stream");
    if (stream->capturing) note("capture begun twice");
    if (!stream->queued.empty()) note("capture begun with unfinished work on the stream");
    stream->capturing = true;
    stream->captured.clear();
    return Status();
}

Status Platform::capture_end(gedge::StreamHandle handle, gedge::GraphHandle* out) {
    Stream* stream = find_stream(handle, "cudaStreamEndCapture");
    if (!stream) return Status(Code::cuda, "invalid stream");
    if (!stream->capturing) note("capture ended that was not begun");
    stream->capturing = false;
    std::vector<Op> ops = std::move(stream->captured);
    stream->captured.clear();
    if (failing("capture_end")) return Status(Code::cuda, "cudaGraphInstantiateWithFlags failed (injected)");
    Graph* graph = new Graph{std::move(ops)};
    graphs_.insert(graph);
    *out = graph;
    return Status();
}

Status Platform::graph_launch(gedge::GraphHandle handle, gedge::StreamHandle stream_handle) {
    if (failing("graph_launch")) return Status(Code::cuda, "cudaGraphLaunch failed (injected)");
    Graph* graph = static_cast<Graph*>(handle);
    if (!graphs_.count(graph)) {
        note("cudaGraphLaunch of an unknown or destroyed graph");
        return Status(Code::cuda, "cudaErrorInvalidValue");
    }
    ++graph_launches;
    for (const Op& op : graph->ops) {
        Status status = queue(stream_handle, op, true);
        if (!status.ok()) return status;
    }
    return Status();
}

void Platform::graph_destroy(gedge::GraphHandle handle) {
    ++calls["graph_destroy"];
    Graph* graph = static_cast<Graph*>(handle);
    if (!graphs_.erase(graph)) return note("cudaGraphExecDestroy of an unknown graph (or destroyed twice)");
    delete graph;
}

}  // namespace standin
