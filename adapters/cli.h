// `mnemo adapters …`: the registry CLI.
#pragma once

namespace CLI {
class App;
}

namespace mnemo {
void add_adapters_commands(CLI::App& app);
}
