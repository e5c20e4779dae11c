// The `mnemo` binary: every area registers its own subcommands; this file only
// dispatches and turns errors into a message and an exit code.
#include "adapters/cli.h"
#include "adapters/generate_adapter.h"
#include "eval/cli.h"
#include "model/cli.h"
#include "model/error.h"
#if MNEMO_WITH_HTTP
#include "serve/cli.h"
#endif
#include "trainer/cli.h"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("mnemo"));
  spdlog::set_pattern("[%H:%M:%S.%e] %^%l%$ %v");

  CLI::App app{
      "mnemo: per-user memory in LoRA adapters on a frozen base model.\n"
      "Train adapters from interaction logs, keep them in a versioned registry, and serve\n"
      "many users' adapters in one batch."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mnemo 0.1.0");
  // `generate --adapter` needs the adapter loader of adapters/, which model/ cannot depend on.
  mnemo::add_model_commands(app, mnemo::load_adapter_for_generate);
  mnemo::add_adapters_commands(app);
  mnemo::add_eval_commands(app);
  mnemo::add_train_command(app);
#if MNEMO_WITH_HTTP
  mnemo::add_serve_command(app);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; any usage error exits 2 (documented in --help).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const mnemo::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
