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

std::shared_ptr<const LoraHook> load_adapter_for_generate(const std::string& dir, const BaseModel& model) {
  LoraAdapter adapter = read_peft_adapter(dir);
  const Transformer& transformer = *model.transformer;
  try {
    validate_against(adapter, transformer.config());
  } catch (const Error& e) {
    fail("adapter {} does not fit the model {}: {}", dir, model.path, e.what());
  }
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

}  // namespace mnemo
