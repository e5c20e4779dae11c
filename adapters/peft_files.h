// PEFT's file names in an adapter directory, shared by the adapter reader and the registry.
#pragma once

namespace mnemo {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

}  // namespace mnemo
