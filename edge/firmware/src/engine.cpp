#include "gedge/engine.hpp"

#include <algorithm>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>

#include "gedge/batching.hpp"
#include "gedge/compat.hpp"

namespace gedge {
namespace {

Status read_bytes(const std::string& path, std::vector<char>& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(Code::io, path, "engine file does not exist or cannot be read");
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return fail(Code::io, path, "engine file read failed");
    if (out.empty()) return fail(Code::io, path, "engine file is empty");
    return Status();
}

std::string dims_text(const std::vector<int64_t>& dims) {
    std::string out = "[";
    for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
    return out + "]";
}

Status internal_error(const char* where, const std::exception& exc) {
    return Status(Code::internal, std::string(where) + ": unexpected exception: " + exc.what());
}

}  // namespace

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "float32";
        case DType::f16: return "float16";
        case DType::i8: return "int8";
        case DType::i32: return "int32";
        case DType::u8: return "uint8";
        case DType::boolean: return "bool";
        case DType::other: break;
    }
    return "another type";
}

Status Engine::open(const std::string& engine_path, const OpenOptions& options, Platform& platform,
                    std::unique_ptr<Engine>& out) {
    try {
        std::unique_ptr<Engine> engine(new Engine(platform));
        Status opened = engine->open_checked(engine_path, options);
        if (!opened.ok()) return opened;  // the destructor releases what was acquired
        out = std::move(engine);
        return Status();
    } catch (const std::exception& exc) {
        return internal_error("open", exc);
    }
}

Status Engine::open_checked(const std::string& engine_path, const OpenOptions& options) {
    if (engine_path.empty()) return Status(Code::argument, "no engine path given");
    std::vector<char> plan;
    Status status = read_bytes(engine_path, plan);
    if (!status.ok()) return status;
    status = read_manifest(engine_path, manifest_);
    if (!status.ok()) return status;

    RuntimeInfo runtime;
    runtime.version = tensorrt_version_string(platform_.tensorrt_version());
    GpuInfo gpu;
    status = platform_.gpu(gpu);
    if (!status.ok()) return fail(Code::cuda, engine_path, "no usable CUDA GPU: " + status.message());
    runtime.gpu_name = gpu.name;
    runtime.compute_capability = compute_capability_name(gpu.major, gpu.minor);
    status = verify_engine(manifest_, plan.data(), plan.size(), runtime, engine_path);
    if (!status.ok()) return status;
    status = check_parity(manifest_, options.allow_failed_parity, engine_path, warning_);
    if (!status.ok()) return status;
    if (manifest_.input_dtype != "uint8" || manifest_.input_layout != "NHWC")
        return fail(Code::argument, engine_path,
                    "this runtime takes uint8 NHWC engines (gedge export's default input); this engine's input is " +
                        manifest_.input_dtype + " " + manifest_.input_layout);

    status = platform_.deserialize(plan.data(), plan.size(), model_);
    if (!status.ok())
        return fail(Code::tensorrt, engine_path, "TensorRT cannot deserialise the engine: " + status.message());
    plan.clear();
    plan.shrink_to_fit();
    status = bind(engine_path);
    if (!status.ok()) return status;

    cuda_graphs_ = options.cuda_graphs;
    if (options.stream) {
        stream_ = options.stream;
    } else {
        status = platform_.stream_create(&stream_);
        if (!status.ok()) return fail(Code::cuda, engine_path, status.message());
        owns_stream_ = true;
    }
    status = model_->create_context(context_);
    if (!status.ok()) return fail(Code::tensorrt, engine_path, status.message());
    status = context_->set_profile(0, stream_);
    if (!status.ok()) return fail(Code::tensorrt, engine_path, status.message());
    status = allocate();
    if (!status.ok()) return fail(status.code(), engine_path, status.message());
    return Status();
}

// The engine's tensors against the manifest: the input by name, uint8, the manifest's shape and profile; every
// output by name, float32. Nothing is bound that the manifest does not name, and nothing it names is missing.
Status Engine::bind(const std::string& engine_path) {
    auto mismatch = [&](const std::string& what) { return fail(Code::mismatch, engine_path, what); };
    const std::vector<TensorDesc> tensors = model_->tensors();
    bool found_input = false;
    std::vector<std::string> engine_outputs;
    for (const TensorDesc& tensor : tensors) {
        if (tensor.is_input) {
            if (tensor.name != manifest_.input_name)
                return mismatch("the engine has an input `" + tensor.name + "` that its manifest does not name (input `" +
                                manifest_.input_name + "`)");
            if (tensor.dtype != DType::u8)
                return mismatch("the engine's input `" + tensor.name + "` is " + dtype_name(tensor.dtype) +
                                ", its manifest says uint8");
            if (tensor.shape.size() != 4 ||
                !std::equal(tensor.shape.begin() + 1, tensor.shape.end(), manifest_.input_shape.begin() + 1))
                return mismatch("the engine's input shape " + dims_text(tensor.shape) + " differs from its manifest's " +
                                dims_text(manifest_.input_shape));
            found_input = true;
            continue;
        }
        if (tensor.dtype != DType::f32)
            return mismatch("the engine's output `" + tensor.name + "` is " + dtype_name(tensor.dtype) +
                            "; gedge's outputs are float32");
        engine_outputs.push_back(tensor.name);
    }
    if (!found_input) return mismatch("the engine has no input `" + manifest_.input_name + "`");
    for (const std::string& name : manifest_.outputs)
        if (std::find(engine_outputs.begin(), engine_outputs.end(), name) == engine_outputs.end())
            return mismatch("the engine has no output `" + name + "` (listed in its manifest)");
    for (const std::string& name : engine_outputs)
        if (std::find(manifest_.outputs.begin(), manifest_.outputs.end(), name) == manifest_.outputs.end())
            return mismatch("the engine has an output `" + name + "` that its manifest does not list");

    std::vector<int64_t> min, opt, max;
    Status status = model_->profile_shape(manifest_.input_name, 0, min, opt, max);
    if (!status.ok()) return fail(Code::tensorrt, engine_path, status.message());
    if (min != manifest_.profile_min || opt != manifest_.profile_opt || max != manifest_.profile_max)
        return mismatch("the engine's profile (min " + dims_text(min) + ", opt " + dims_text(opt) + ", max " +
                        dims_text(max) + ") differs from its manifest's (min " + dims_text(manifest_.profile_min) +
                        ", max " + dims_text(manifest_.profile_max) + ")");
    input_.height = static_cast<int>(manifest_.input_shape[1]);
    input_.width = static_cast<int>(manifest_.input_shape[2]);
    input_.channels = static_cast<int>(manifest_.input_shape[3]);
    input_.min_batch = static_cast<int>(min[0]);
    input_.max_batch = static_cast<int>(max[0]);
    row_bytes_ = static_cast<size_t>(input_.height) * input_.width * input_.channels;
    return Status();
}

// Buffers for the largest batch, addresses set once: device input, pinned input; per output a device buffer and,
// for per-input scalars, a pinned host buffer. The output sizes come from the context at the largest batch.
Status Engine::allocate() {
    const size_t max_rows = static_cast<size_t>(input_.max_batch);
    Status status = platform_.device_alloc(max_rows * row_bytes_, &device_input_);
    if (!status.ok()) return status;
    void* host = nullptr;
    status = platform_.host_alloc(max_rows * row_bytes_, &host);
    if (!status.ok()) return status;
    host_input_ = static_cast<uint8_t*>(host);
    status = context_->set_address(manifest_.input_name, device_input_);
    if (!status.ok()) return status;
    status = set_batch(max_rows);
    if (!status.ok()) return status;
    for (const std::string& name : manifest_.outputs) {
        std::vector<int64_t> dims;
        status = context_->tensor_shape(name, dims);
        if (!status.ok()) return status;
        if (dims.empty() || dims[0] != static_cast<int64_t>(max_rows))
            return Status(Code::mismatch, "output `" + name + "` has shape " + dims_text(dims) + " at batch " +
                                              std::to_string(max_rows) + "; expected the batch first");
        size_t per_input = 1;
        for (size_t i = 1; i < dims.size(); ++i) {
            if (dims[i] < 1) return Status(Code::mismatch, "output `" + name + "` has a dynamic shape " + dims_text(dims));
            per_input *= static_cast<size_t>(dims[i]);
        }
        Output output;
        output.name = name;
        output.per_input = per_input;
        outputs_.push_back(output);
        Output& slot = outputs_.back();
        status = platform_.device_alloc(max_rows * per_input * sizeof(float), &slot.device);
        if (!status.ok()) return status;
        status = context_->set_address(name, slot.device);
        if (!status.ok()) return status;
        if (per_input == 1) {
            status = platform_.host_alloc(max_rows * sizeof(float), &host);
            if (!status.ok()) return status;
            slot.host = static_cast<float*>(host);
            slot.score_index = static_cast<int>(score_names_.size());
            if (name == "score") score_column_ = slot.score_index;
            score_names_.push_back(name);
        }
    }
    if (score_column_ < 0) return Status(Code::mismatch, "output `score` is not one value per input");
    return Status();
}

Status Engine::set_batch(size_t rows) {
    if (rows == batch_) return Status();
    drop_graph();  // a graph holds the kernels of the shape it was captured with
    batch_ = 0;
    Status status = context_->set_input_shape(
        manifest_.input_name, {static_cast<int64_t>(rows), input_.height, input_.width, input_.channels});
    if (!status.ok()) return status;
    batch_ = rows;
    return Status();
}

// What one chunk puts on the stream: the input up, enqueueV3, the scalar outputs down.
Status Engine::record(size_t rows) {
    Status status = platform_.copy_to_device(device_input_, host_input_, rows * row_bytes_, stream_);
    if (!status.ok()) return status;
    status = context_->enqueue(stream_);
    if (!status.ok()) return status;
    for (const Output& output : outputs_) {
        if (!output.host) continue;
        status = platform_.copy_to_host(output.host, output.device, rows * sizeof(float), stream_);
        if (!status.ok()) return status;
    }
    return Status();
}

// One chunk already packed into the pinned input. With CUDA graphs: the first chunk of a size runs as it is
// (TensorRT finishes its shape-dependent setup there) and is then captured; later chunks of that size replay it.
Status Engine::run_chunk(size_t rows) {
    Status status = set_batch(rows);
    if (!status.ok()) return status;
    if (cuda_graphs_ && graph_) {
        status = platform_.graph_launch(graph_, stream_);
        if (!status.ok()) return status;
        return platform_.synchronize(stream_);
    }
    status = record(rows);
    if (!status.ok()) return status;
    status = platform_.synchronize(stream_);
    if (!status.ok() || !cuda_graphs_) return status;
    status = platform_.capture_begin(stream_);
    if (!status.ok()) return status;
    Status recorded = record(rows);
    GraphHandle graph = nullptr;
    Status ended = platform_.capture_end(stream_, &graph);
    if (!recorded.ok()) {
        if (ended.ok()) platform_.graph_destroy(graph);
        return Status(recorded.code(), "while capturing a CUDA graph: " + recorded.message());
    }
    if (!ended.ok()) return Status(ended.code(), "while capturing a CUDA graph: " + ended.message());
    graph_ = graph;
    return Status();
}

Status Engine::score(const uint8_t* pixels, size_t n, float* scores, uint8_t* rejected) {
    try {
        return score_checked(pixels, n, scores, rejected);
    } catch (const std::exception& exc) {
        recover();
        return internal_error("score", exc);
    }
}

Status Engine::score_checked(const uint8_t* pixels, size_t n, float* scores, uint8_t* rejected) {
    if (n == 0) return Status(Code::argument, "score: no inputs (n is 0)");
    if (!pixels || !scores) return Status(Code::argument, "score: pixels and scores must not be null");
    const size_t columns = score_names_.size();
    for (const Chunk& chunk : split_batches(n, input_.min_batch, input_.max_batch)) {
        pack_rows(pixels + chunk.start * row_bytes_, chunk.count, chunk.padded, row_bytes_, host_input_);
        Status status = run_chunk(chunk.padded);
        if (!status.ok()) {
            recover();
            return status;
        }
        for (const Output& output : outputs_) {
            if (!output.host) continue;
            for (size_t row = 0; row < chunk.count; ++row)
                scores[(chunk.start + row) * columns + output.score_index] = output.host[row];
        }
    }
    if (rejected)
        for (size_t row = 0; row < n; ++row)
            rejected[row] = scores[row * columns + score_column_] >= threshold32() ? 1 : 0;
    return Status();
}

Status Engine::score_frame(const uint8_t* frame, int height, int width, int channels, float* scores,
                           uint8_t* rejected) {
    try {
        if (!frame || !scores) return Status(Code::argument, "score_frame: frame and scores must not be null");
        if (channels != input_.channels)
            return Status(Code::argument, "frame has " + std::to_string(channels) + " channel(s) but the model expects " +
                                              std::to_string(input_.channels));
        const Preprocess& pre = manifest_.preprocess;
        if (!pre.present || pre.mode == "resize") {
            if (height != input_.height || width != input_.width)
                return Status(Code::argument, "frame is " + std::to_string(width) + "x" + std::to_string(height) +
                                                  " but the model takes " + std::to_string(input_.width) + "x" +
                                                  std::to_string(input_.height) + " frames (resize mode; resize it first)");
            return score(frame, 1, scores, rejected);
        }
        std::vector<uint8_t> tiles;
        size_t count = 0;
        Status status = cut_tiles(frame, height, width, channels, input_.height, pre.tile_stride(), tiles, count);
        if (!status.ok()) return status;
        const size_t columns = score_names_.size();
        std::vector<float> per_tile(count * columns);
        status = score(tiles.data(), count, per_tile.data(), nullptr);
        if (!status.ok()) return status;
        for (size_t column = 0; column < columns; ++column) {
            float best = per_tile[column];
            for (size_t tile = 1; tile < count; ++tile) best = std::max(best, per_tile[tile * columns + column]);
            scores[column] = best;
        }
        if (rejected) *rejected = scores[score_column_] >= threshold32() ? 1 : 0;
        return Status();
    } catch (const std::exception& exc) {
        return internal_error("score_frame", exc);
    }
}

void Engine::drop_graph() {
    if (graph_) platform_.graph_destroy(graph_);
    graph_ = nullptr;
}

// After a failed chunk: let the stream drain, forget the shape and the graph so the next call starts clean.
void Engine::recover() {
    if (stream_) (void)platform_.synchronize(stream_);
    drop_graph();
    batch_ = 0;
}

Engine::~Engine() {
    if (stream_) (void)platform_.synchronize(stream_);  // nothing may still use the buffers freed below
    drop_graph();
    context_.reset();
    for (Output& output : outputs_) {
        if (output.device) platform_.device_free(output.device);
        if (output.host) platform_.host_free(output.host);
    }
    if (device_input_) platform_.device_free(device_input_);
    if (host_input_) platform_.host_free(host_input_);
    if (owns_stream_) platform_.stream_destroy(stream_);
    model_.reset();
}

}  // namespace gedge
