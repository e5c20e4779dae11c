// `mnemo generate --adapter DIR`: one adapter in one slot.
#include "adapters/generate_adapter.h"

#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "model/base_model.h"
#include "model/transformer.h"

#include "model/error.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace mnemo {
namespace {

std::shared_ptr<const LoraHook> attach(const std::string& dir, const LoraAdapter& adapter, const BaseModel& model) {
  const Transformer& transformer = *model.transformer;
  auto slots = std::make_shared<AdapterSlots>(transformer.config(), /*num_slots=*/1, transformer.dtype(),
                                              transformer.device());
  slots->load(0, adapter);
  spdlog::info("adapter {}: rank {}, alpha {}, {} on {}", dir, adapter.config.rank, adapter.config.alpha,
               adapter.config.use_rslora ? "rsLoRA" : "LoRA", fmt::join([&] {
                 std::vector<std::string> names;
                 for (LinearModule m : adapter.config.target_modules) names.push_back(module_name(m));
                 return names;
               }(), ","));
  return slots;
}

}  // namespace

AdapterAttacher load_adapter_for_generate(const std::string& dir, const std::string& model_path,
                                          const ModelConfig& config) {
  auto adapter = std::make_shared<LoraAdapter>(read_peft_adapter(dir));
  try {
    validate_against(*adapter, config);
  } catch (const Error& e) {
    fail("adapter {} does not fit the model {}: {}", dir, model_path, e.what());
  }
  return [dir, adapter](const BaseModel& model) { return attach(dir, *adapter, model); };
}

}  // namespace mnemo
