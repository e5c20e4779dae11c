// Small, valid PEFT adapters for the registry's tests, and the base-model
// shapes they fit: one decoder layer, LoRA on q_proj only, every projection
// [kOut, in_features]. A registry checks every adapter it stores against the
// shapes it records, so a test registry is initialised with these first.
#pragma once

#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/safetensors.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace mnemo::testing {

inline constexpr int64_t kTestAdapterOut = 8;

inline std::string test_base_shapes(int64_t in_features = 8) {
  AdapterShapes shapes;
  shapes.num_layers = 1;
  for (auto& shape : shapes.modules) shape = {kTestAdapterOut, in_features};
  return adapter_shapes_to_json(shapes);
}

// `metadata` goes to the safetensors __metadata__ as it is (user, fingerprints, metrics).
inline void write_test_adapter(const std::string& dir, const std::map<std::string, std::string>& metadata, float fill,
                               int64_t in_features = 8, int64_t rank = 4) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json")
      << fmt::format(R"({{"peft_type":"LORA","r":{},"lora_alpha":{},"target_modules":["q_proj"]}})", rank, 2 * rank);
  write_safetensors(dir + "/adapter_model.safetensors",
                    {{peft_tensor_name(0, LinearModule::Q, 'A'), at::full({rank, in_features}, fill)},
                     {peft_tensor_name(0, LinearModule::Q, 'B'), at::full({kTestAdapterOut, rank}, fill)}},
                    metadata);
}

}  // namespace mnemo::testing
