// Fuzz target for an uploaded adapter: adapter_config.json and
// adapter_model.safetensors, read and checked against a fixed base model.
#include "adapters/lora_adapter.h"
#include "fuzz/fuzz_target.h"

#include <ATen/ATen.h>

namespace mnemo::fuzz {
namespace {

// Input: a 2-byte little-endian length, that many bytes of adapter_config.json,
// then the safetensors file.
MNEMO_FUZZ_TARGET(adapter) {
  if (data.size() < 2) return;
  const size_t config_length = std::min<size_t>(static_cast<unsigned char>(data[0]) |
                                                    static_cast<size_t>(static_cast<unsigned char>(data[1])) << 8,
                                                data.size() - 2);
  const std::string config = scratch_file("adapter_config.json", data.substr(2, config_length));
  const std::string weights = scratch_file("adapter_model.safetensors", data.substr(2 + config_length));
  LoraAdapter adapter;
  if (!parsed("read_peft_adapter_files", [&] { adapter = read_peft_adapter_files(config, weights); })) return;
  // What loaded is one rank, finite, with every targeted pair in every layer.
  for (size_t layer = 0; layer < adapter.layers.size(); ++layer)
    for (LinearModule module : adapter.config.target_modules) {
      const LoraPair& pair = adapter.pair(static_cast<int64_t>(layer), module);
      if (!pair.A.defined() || !pair.B.defined() || pair.A.size(0) != adapter.config.rank ||
          pair.B.size(1) != adapter.config.rank || !at::isfinite(pair.A).all().item<bool>() ||
          !at::isfinite(pair.B).all().item<bool>())
        violation("adapter: a loaded adapter breaks its invariants");
    }
  AdapterShapes shapes;  // a two-layer base, every projection 8 x 8
  shapes.num_layers = 2;
  for (auto& shape : shapes.modules) shape = {8, 8};
  parsed("validate_against", [&] { validate_against(adapter, shapes, "the fuzz base"); });
}

}  // namespace
}  // namespace mnemo::fuzz
