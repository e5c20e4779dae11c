// The adapter loader that `mnemo generate --adapter DIR` uses (model/cli.h's
// AdapterLoader; main.cpp passes it in, since model/ cannot depend on adapters/).
#pragma once

#include "model/cli.h"

#include <string>

namespace mnemo {

// Reads the PEFT adapter in `dir` and checks it against `config` (of the
// model at `model_path`), before the model loads; the attacher puts it in
// slot 0, in the loaded model's dtype and on its device. Throws mnemo::Error
// naming the file and what does not fit.
AdapterAttacher load_adapter_for_generate(const std::string& dir, const std::string& model_path,
                                          const ModelConfig& config);

}  // namespace mnemo
