// `mnemo train`: distills each user's interaction logs into a LoRA adapter.
#pragma once

namespace CLI {
class App;
}

namespace mnemo {

void add_train_command(CLI::App& app);

}  // namespace mnemo
