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
struct ModelConfig;
class LoraHook;

// Puts an adapter already read and checked into adapter slot 0 of the loaded
// `model` and returns the hook that applies it.
using AdapterAttacher = std::function<std::shared_ptr<const LoraHook>(const BaseModel& model)>;
// Reads the adapter in `adapter_dir` and checks it against the config of the
// model at `model_path` before the model's weights load (a bad adapter costs
// no model load), and returns its attacher. Supplied by adapters/ (model/
// does not depend on it); main.cpp wires the two together.
using AdapterLoader = std::function<AdapterAttacher(const std::string& adapter_dir, const std::string& model_path,
                                                    const ModelConfig& config)>;

void add_model_commands(CLI::App& app, AdapterLoader adapter_loader);

}  // namespace mnemo
