// The platform on a machine with TensorRT and a GPU: each seam method is one TensorRT or CUDA runtime call with
// its return code checked. Only TensorRT API that 8.5 also has is used (see docs/firmware.md).
#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>
#include <string>

#include "gedge/platform.hpp"
#include "trt_types.hpp"

namespace gedge {
namespace {

// TensorRT's errors, kept so a refused call can say why.
class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* message) noexcept override {
        if (severity > Severity::kERROR || message == nullptr) return;
        try {
            std::lock_guard<std::mutex> lock(mutex_);
            last_ = message;
        } catch (...) {  // out of memory for the text: the caller still gets a generic message
        }
    }

    std::string take(const char* fallback) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string out = last_.empty() ? std::string(fallback) : last_;
        last_.clear();
        return out;
    }

private:
    std::mutex mutex_;
    std::string last_;
};

Logger& logger() {
    static Logger instance;
    return instance;
}

Status trt_failed(const char* call) {
    return Status(Code::tensorrt, std::string(call) + " failed: " + logger().take("no message from TensorRT"));
}

Status cuda_status(cudaError_t error, const char* call) {
    if (error == cudaSuccess) return Status();
    return Status(Code::cuda, std::string(call) + " failed: " + cudaGetErrorName(error) + " (" +
                                  cudaGetErrorString(error) + ")");
}

cudaStream_t as_stream(StreamHandle stream) { return static_cast<cudaStream_t>(stream); }

class TrtContext final : public ExecutionContext {
public:
    explicit TrtContext(nvinfer1::IExecutionContext* context) : context_(context) {}

    Status set_profile(int index, StreamHandle stream) override {
        return context_->setOptimizationProfileAsync(index, as_stream(stream)) ? Status()
                                                                                : trt_failed("setOptimizationProfileAsync");
    }

    Status set_input_shape(const std::string& name, const std::vector<int64_t>& values) override {
        nvinfer1::Dims dims;
        if (!detail::to_trt(values, dims)) return Status(Code::argument, "too many dimensions for " + name);
        return context_->setInputShape(name.c_str(), dims) ? Status() : trt_failed("setInputShape");
    }

    Status tensor_shape(const std::string& name, std::vector<int64_t>& dims) override {
        const nvinfer1::Dims shape = context_->getTensorShape(name.c_str());
        if (shape.nbDims < 0) return trt_failed("getTensorShape");
        dims = detail::from_trt(shape);
        return Status();
    }

    Status set_address(const std::string& name, void* device) override {
        return context_->setTensorAddress(name.c_str(), device) ? Status() : trt_failed("setTensorAddress");
    }

    Status enqueue(StreamHandle stream) override {
        return context_->enqueueV3(as_stream(stream)) ? Status() : trt_failed("enqueueV3");
    }

private:
    std::unique_ptr<nvinfer1::IExecutionContext> context_;
};

class TrtModel final : public EngineModel {
public:
    TrtModel(nvinfer1::IRuntime* runtime, nvinfer1::ICudaEngine* engine) : runtime_(runtime), engine_(engine) {}

    std::vector<TensorDesc> tensors() const override {
        std::vector<TensorDesc> out;
        const int32_t count = engine_->getNbIOTensors();
        for (int32_t i = 0; i < count; ++i) {
            const char* name = engine_->getIOTensorName(i);
            if (!name) continue;
            TensorDesc tensor;
            tensor.name = name;
            tensor.is_input = engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
            tensor.dtype = detail::from_trt(engine_->getTensorDataType(name));
            tensor.shape = detail::from_trt(engine_->getTensorShape(name));
            out.push_back(tensor);
        }
        return out;
    }

    int profiles() const override { return engine_->getNbOptimizationProfiles(); }

    Status profile_shape(const std::string& input, int profile, std::vector<int64_t>& min, std::vector<int64_t>& opt,
                         std::vector<int64_t>& max) const override {
        using Selector = nvinfer1::OptProfileSelector;
        const nvinfer1::Dims lo = engine_->getProfileShape(input.c_str(), profile, Selector::kMIN);
        const nvinfer1::Dims mid = engine_->getProfileShape(input.c_str(), profile, Selector::kOPT);
        const nvinfer1::Dims hi = engine_->getProfileShape(input.c_str(), profile, Selector::kMAX);
        if (lo.nbDims < 1 || mid.nbDims < 1 || hi.nbDims < 1) return trt_failed("getProfileShape");
        min = detail::from_trt(lo);
        opt = detail::from_trt(mid);
        max = detail::from_trt(hi);
        return Status();
    }

    Status create_context(std::unique_ptr<ExecutionContext>& out) override {
        nvinfer1::IExecutionContext* context = engine_->createExecutionContext();
        if (!context) return trt_failed("createExecutionContext");
        out = std::make_unique<TrtContext>(context);
        return Status();
    }

private:
    // Declared in this order so the engine is destroyed before the runtime that made it.
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
};

class TensorRTPlatform final : public Platform {
public:
    int32_t tensorrt_version() override { return getInferLibVersion(); }

    Status gpu(GpuInfo& out) override {
        int device = 0;
        Status status = cuda_status(cudaGetDevice(&device), "cudaGetDevice");
        if (!status.ok()) return status;
        cudaDeviceProp props{};
        status = cuda_status(cudaGetDeviceProperties(&props, device), "cudaGetDeviceProperties");
        if (!status.ok()) return status;
        out.name = props.name;
        out.major = props.major;
        out.minor = props.minor;
        return Status();
    }

    Status deserialize(const void* plan, size_t size, std::unique_ptr<EngineModel>& out) override {
        std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(logger()));
        if (!runtime) return trt_failed("createInferRuntime");
        nvinfer1::ICudaEngine* engine = runtime->deserializeCudaEngine(plan, size);
        if (!engine) return trt_failed("deserializeCudaEngine");
        out = std::make_unique<TrtModel>(runtime.release(), engine);
        return Status();
    }

    Status host_alloc(size_t bytes, void** out) override {
        return cuda_status(cudaMallocHost(out, bytes), "cudaMallocHost");
    }
    void host_free(void* pointer) override { (void)cudaFreeHost(pointer); }
    Status device_alloc(size_t bytes, void** out) override { return cuda_status(cudaMalloc(out, bytes), "cudaMalloc"); }
    void device_free(void* pointer) override { (void)cudaFree(pointer); }

    Status stream_create(StreamHandle* out) override {
        cudaStream_t stream = nullptr;
        Status status = cuda_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        if (status.ok()) *out = stream;
        return status;
    }
    void stream_destroy(StreamHandle stream) override { (void)cudaStreamDestroy(as_stream(stream)); }

    Status copy_to_device(void* device, const void* host, size_t bytes, StreamHandle stream) override {
        return cuda_status(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, as_stream(stream)),
                           "cudaMemcpyAsync (host to device)");
    }
    Status copy_to_host(void* host, const void* device, size_t bytes, StreamHandle stream) override {
        return cuda_status(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, as_stream(stream)),
                           "cudaMemcpyAsync (device to host)");
    }
    Status synchronize(StreamHandle stream) override {
        return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
    }

    Status capture_begin(StreamHandle stream) override {
        return cuda_status(cudaStreamBeginCapture(as_stream(stream), cudaStreamCaptureModeThreadLocal),
                           "cudaStreamBeginCapture");
    }
    Status capture_end(StreamHandle stream, GraphHandle* out) override {
        cudaGraph_t graph = nullptr;
        Status status = cuda_status(cudaStreamEndCapture(as_stream(stream), &graph), "cudaStreamEndCapture");
        if (!status.ok()) return status;
        cudaGraphExec_t exec = nullptr;
        // cudaGraphInstantiateWithFlags: the same signature from CUDA 11.4 (JetPack 5) to 13.
        status = cuda_status(cudaGraphInstantiateWithFlags(&exec, graph, 0), "cudaGraphInstantiateWithFlags");
        (void)cudaGraphDestroy(graph);
        if (status.ok()) *out = exec;
        return status;
    }
    Status graph_launch(GraphHandle graph, StreamHandle stream) override {
        return cuda_status(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), as_stream(stream)), "cudaGraphLaunch");
    }
    void graph_destroy(GraphHandle graph) override { (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph)); }
};

}  // namespace

Platform& default_platform() {
    static TensorRTPlatform platform;
    return platform;
}

}  // namespace gedge
