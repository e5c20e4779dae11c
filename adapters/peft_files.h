// PEFT's file names in an adapter directory, and the limits on its config,
// shared by the adapter reader and the registry.
#pragma once

#include "tokenizer/json_input.h"

namespace mnemo {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
// adapter_config.json is under a kilobyte in real adapters.
inline constexpr JsonLimits kAdapterConfigLimits{1ull << 20, 16, 64ull << 10};

}  // namespace mnemo
