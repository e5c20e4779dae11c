// `mnemo generate` and `mnemo model …` (convert, info).
#pragma once

namespace CLI {
class App;
}

namespace mnemo {
void add_model_commands(CLI::App& app);
}
