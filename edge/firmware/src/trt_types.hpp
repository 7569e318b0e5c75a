// Internal: TensorRT's types in the library's terms. Header-only (no TensorRT symbol is referenced), so the unit
// tests check the mapping against each TensorRT header set without a libnvinfer to link.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include <NvInferRuntime.h>

#include "gedge/platform.hpp"

namespace gedge::detail {

// Enum members by name: their numbers are not the same in every TensorRT version.
inline DType from_trt(nvinfer1::DataType type) {
    switch (type) {
        case nvinfer1::DataType::kFLOAT: return DType::f32;
        case nvinfer1::DataType::kHALF: return DType::f16;
        case nvinfer1::DataType::kINT8: return DType::i8;
        case nvinfer1::DataType::kINT32: return DType::i32;
        case nvinfer1::DataType::kUINT8: return DType::u8;
        case nvinfer1::DataType::kBOOL: return DType::boolean;
        default: return DType::other;  // kFP8, kBF16, kINT64, kINT4... (version-dependent members)
    }
}

inline std::vector<int64_t> from_trt(const nvinfer1::Dims& dims) {
    std::vector<int64_t> out;
    for (int32_t i = 0; i < dims.nbDims && i < nvinfer1::Dims::MAX_DIMS; ++i) out.push_back(static_cast<int64_t>(dims.d[i]));
    return out;
}

// Dims::d holds int32_t in TensorRT 8.x and int64_t from 10.0 on. false when there are too many dimensions.
inline bool to_trt(const std::vector<int64_t>& values, nvinfer1::Dims& dims) {
    using Extent = std::remove_reference_t<decltype(dims.d[0])>;
    if (values.size() > static_cast<size_t>(nvinfer1::Dims::MAX_DIMS)) return false;
    dims = nvinfer1::Dims{};
    dims.nbDims = static_cast<int32_t>(values.size());
    for (size_t i = 0; i < values.size(); ++i) dims.d[i] = static_cast<Extent>(values[i]);
    return true;
}

}  // namespace gedge::detail
