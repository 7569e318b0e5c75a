// Checks that depend on the TensorRT header set this test binary was compiled against (10.3 or 11.1 in
// `make firmware-check`): the version macros decode like getInferLibVersion() will, the DataType members map by
// name, and Dims convert both ways.
#include <cstdio>
#include <string>
#include <vector>

#include <NvInferVersion.h>

#include "gedge/compat.hpp"
#include "harness.hpp"
#include "trt_types.hpp"

TEST(header_version_decodes_like_getInferLibVersion) {
    const std::string expected = std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + "." +
                                 std::to_string(NV_TENSORRT_PATCH);
    std::printf("    compiled against TensorRT %s headers\n", expected.c_str());
    CHECK_EQ(gedge::tensorrt_version_string(NV_TENSORRT_VERSION), expected);
    CHECK(gedge::same_tensorrt_version(expected + "." + std::to_string(NV_TENSORRT_BUILD), expected));
}

TEST(tensorrt_data_types_map_by_name) {
    using nvinfer1::DataType;
    CHECK(gedge::detail::from_trt(DataType::kFLOAT) == gedge::DType::f32);
    CHECK(gedge::detail::from_trt(DataType::kHALF) == gedge::DType::f16);
    CHECK(gedge::detail::from_trt(DataType::kINT8) == gedge::DType::i8);
    CHECK(gedge::detail::from_trt(DataType::kINT32) == gedge::DType::i32);
    CHECK(gedge::detail::from_trt(DataType::kUINT8) == gedge::DType::u8);
    CHECK(gedge::detail::from_trt(DataType::kBOOL) == gedge::DType::boolean);
}

TEST(dims_convert_both_ways) {
    nvinfer1::Dims dims;
    REQUIRE(gedge::detail::to_trt({32, 64, 64, 3}, dims));
    CHECK_EQ(dims.nbDims, 4);
    CHECK(gedge::detail::from_trt(dims) == std::vector<int64_t>({32, 64, 64, 3}));
    CHECK(!gedge::detail::to_trt(std::vector<int64_t>(nvinfer1::Dims::MAX_DIMS + 1, 1), dims));
    nvinfer1::Dims unknown{};
    unknown.nbDims = -1;  // what TensorRT returns for an unknown tensor
    CHECK(gedge::detail::from_trt(unknown).empty());
}
