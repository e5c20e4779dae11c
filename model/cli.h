// `mnemo generate` and `mnemo model …` (convert, info).
#pragma once

namespace CLI {
class App;
}

#include <functional>
#include <memory>
#include <string>

namespace mnemo {

struct BaseModel;
class LoraHook;

// Loads the adapter in `adapter_dir` for `model` and returns a hook that
// applies it to adapter slot 0. Supplied by adapters/ (model/ does not depend
// on it); main.cpp wires the two together.
using AdapterLoader =
    std::function<std::shared_ptr<const LoraHook>(const std::string& adapter_dir, const BaseModel& model)>;

void add_model_commands(CLI::App& app, AdapterLoader adapter_loader);

}  // namespace mnemo
