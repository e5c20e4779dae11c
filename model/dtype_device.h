// Parsing the user's --dtype and --device (c10 headers only, no ATen).
#pragma once

#include "kernels/weight_quant.h"

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace mnemo {

// "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16". Throws mnemo::Error otherwise.
c10::ScalarType parse_dtype(const std::string& name);
// "cpu", "cuda", "cuda:N". Throws mnemo::Error for anything else or a CUDA
// device on a machine without one.
c10::Device parse_device(const std::string& name);
// Throws mnemo::Error when int8/int4 weights are asked for with another
// dtype than float32 or a device other than the CPU.
void check_quant_options(WeightQuant quant, c10::ScalarType dtype, c10::Device device);

}  // namespace mnemo
