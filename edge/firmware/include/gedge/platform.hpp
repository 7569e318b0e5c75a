// The seam between the library and TensorRT/CUDA. Everything the engine does on the GPU goes through these three
// interfaces, one method per TensorRT or CUDA entry point (named next to it). src/tensorrt_platform.cpp implements
// them with TensorRT and the CUDA runtime; the unit tests link stand-ins (tests/standin_platform.cpp) that check
// how they are used: results visible only after synchronize, pinned host memory, shapes within the profile,
// every tensor bound before an enqueue, nothing leaked, and failures injected at any call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gedge/status.hpp"

namespace gedge {

enum class DType { f32, f16, i8, i32, u8, boolean, other };
const char* dtype_name(DType dtype);

struct TensorDesc {
    std::string name;
    bool is_input = false;
    DType dtype = DType::other;
    std::vector<int64_t> shape;  // as the engine declares it, -1 for dynamic dimensions
};

struct GpuInfo {
    std::string name;
    int major = 0;
    int minor = 0;
};

using StreamHandle = void*;  // a cudaStream_t
using GraphHandle = void*;   // a cudaGraphExec_t

// A TensorRT IExecutionContext.
class ExecutionContext {
public:
    virtual ~ExecutionContext() = default;
    virtual Status set_profile(int index, StreamHandle stream) = 0;                          // setOptimizationProfileAsync
    virtual Status set_input_shape(const std::string& name, const std::vector<int64_t>& dims) = 0;  // setInputShape
    virtual Status tensor_shape(const std::string& name, std::vector<int64_t>& dims) = 0;   // getTensorShape
    virtual Status set_address(const std::string& name, void* device) = 0;                  // setTensorAddress
    virtual Status enqueue(StreamHandle stream) = 0;                                         // enqueueV3
};

// A deserialised TensorRT ICudaEngine (with the IRuntime that made it).
class EngineModel {
public:
    virtual ~EngineModel() = default;
    // getNbIOTensors, getIOTensorName, getTensorIOMode, getTensorDataType, getTensorShape
    virtual std::vector<TensorDesc> tensors() const = 0;
    virtual int profiles() const = 0;  // getNbOptimizationProfiles
    virtual Status profile_shape(const std::string& input, int profile, std::vector<int64_t>& min,
                                 std::vector<int64_t>& opt, std::vector<int64_t>& max) const = 0;  // getProfileShape
    virtual Status create_context(std::unique_ptr<ExecutionContext>& out) = 0;  // createExecutionContext
};

// TensorRT's library and the CUDA runtime.
class Platform {
public:
    virtual ~Platform() = default;
    virtual int32_t tensorrt_version() = 0;  // getInferLibVersion
    virtual Status gpu(GpuInfo& out) = 0;    // cudaGetDevice, cudaGetDeviceProperties
    // createInferRuntime, deserializeCudaEngine
    virtual Status deserialize(const void* plan, size_t size, std::unique_ptr<EngineModel>& out) = 0;

    virtual Status host_alloc(size_t bytes, void** out) = 0;    // cudaMallocHost (pinned)
    virtual void host_free(void* pointer) = 0;                   // cudaFreeHost
    virtual Status device_alloc(size_t bytes, void** out) = 0;  // cudaMalloc
    virtual void device_free(void* pointer) = 0;                 // cudaFree

    virtual Status stream_create(StreamHandle* out) = 0;         // cudaStreamCreateWithFlags (non-blocking)
    virtual void stream_destroy(StreamHandle stream) = 0;        // cudaStreamDestroy
    virtual Status copy_to_device(void* device, const void* host, size_t bytes, StreamHandle stream) = 0;  // cudaMemcpyAsync
    virtual Status copy_to_host(void* host, const void* device, size_t bytes, StreamHandle stream) = 0;    // cudaMemcpyAsync
    virtual Status synchronize(StreamHandle stream) = 0;         // cudaStreamSynchronize

    virtual Status capture_begin(StreamHandle stream) = 0;       // cudaStreamBeginCapture
    // cudaStreamEndCapture, cudaGraphInstantiateWithFlags; ends the capture even when it fails
    virtual Status capture_end(StreamHandle stream, GraphHandle* out) = 0;
    virtual Status graph_launch(GraphHandle graph, StreamHandle stream) = 0;  // cudaGraphLaunch
    virtual void graph_destroy(GraphHandle graph) = 0;           // cudaGraphExecDestroy
};

// The platform the C API opens engines with: TensorRT and CUDA (src/tensorrt_platform.cpp). A unit-test build
// links a stand-in definition instead (a link seam).
Platform& default_platform();

}  // namespace gedge
