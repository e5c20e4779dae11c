// The adapter loader that `mnemo generate --adapter DIR` uses (model/cli.h's
// AdapterLoader; main.cpp passes it in, since model/ cannot depend on adapters/).
#pragma once

#include <memory>
#include <string>

namespace mnemo {

struct BaseModel;
class LoraHook;

// Reads the PEFT adapter in `dir`, checks it against `model` and returns a
// hook with it in slot 0, in the model's dtype and on its device. Throws
// mnemo::Error naming the file and what does not fit.
std::shared_ptr<const LoraHook> load_adapter_for_generate(const std::string& dir, const BaseModel& model);

}  // namespace mnemo
