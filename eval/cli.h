// `mnemo eval …`: generate the personal-memory benchmark, validate question
// and log files, and run the evaluation.
#pragma once

namespace CLI {
class App;
}

namespace mnemo {

void add_eval_commands(CLI::App& app);

}  // namespace mnemo
