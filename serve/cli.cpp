#include "serve/cli.h"

#include "adapters/base_fingerprint.h"
#include "adapters/registry.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/error.h"
#include "model/transformer.h"
#include "serve/http_server.h"

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <memory>
#include <thread>

namespace mnemo {
namespace {

struct ServeOptions {
  std::string config, model, registry, keys, host, port_file, quant;
  int port = -1;
};

// Every client connection is a descriptor: a soft limit of 1,024 would refuse
// connections long before the queue does, so take what the hard limit allows.
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = limit.rlim_max == RLIM_INFINITY ? 65536 : std::min<rlim_t>(limit.rlim_max, 65536);
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return;
  const rlim_t current = limit.rlim_cur;
  limit.rlim_cur = wanted;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
    spdlog::warn("cannot raise the open-file limit to {}: connections beyond about {} will be refused", wanted,
                 current);
}

void run_serve(const ServeOptions& options) {
  ServeConfig config = options.config.empty() ? ServeConfig{} : read_serve_config(options.config);
  if (!options.model.empty()) config.model = options.model;
  if (!options.quant.empty()) config.quant = options.quant;
  if (!options.keys.empty()) config.keys_file = options.keys;
  if (!options.host.empty()) config.host = options.host;
  if (options.port >= 0) config.port = options.port;
  validate_serve_config(config, options.config.empty() ? "the built-in serve config" : options.config);
  if (config.keys_file.empty()) fail("no API keys: pass --keys FILE or set keys_file in the config");
  ApiKeys keys = ApiKeys::read(config.keys_file);
  raise_open_file_limit();

  // SIGTERM and SIGINT are taken by one thread (below), never by the others.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  at::set_num_threads(config.threads);
  const std::string model_path = config.model.empty() ? default_model_path() : config.model;
  BaseModel model =
      open_base_model(model_path, {.dtype = config.dtype, .device = config.device, .quant = config.quant});
  config.registry = resolve_registry_root(options.registry.empty() ? config.registry : options.registry,
                                          options.config);
  std::unique_ptr<Registry> registry;
  try {
    RegistryOptions registry_options;
    registry_options.mode = OpenMode::kReadOnly;
    registry = Registry::open(config.registry, registry_options);
    // The same weights in another file format (GGUF, a converted directory)
    // have another fingerprint, so a mismatch is said, not refused; the shapes
    // every adapter is checked against on load still guard what can run.
    if (std::optional<std::string> base = registry->base_fingerprint()) {
      const std::string served = base_model_fingerprint(model_path);
      if (*base != served)
        spdlog::warn("registry {} holds adapters for base model {}, but {} is {}", config.registry, *base, model_path,
                     served);
    }
  } catch (const RegistryNotFound&) {
    spdlog::warn("no registry at {}: every request runs on the base model until one is created", config.registry);
    config.registry.clear();
  }

  const size_t n_keys = keys.size();
  HttpServer server(config, model, registry.get(), std::move(keys));
  const int port = server.bind();
  if (!options.port_file.empty()) std::ofstream(options.port_file) << port << "\n";
  spdlog::info("mnemo serve: {} on http://{}:{} ({} keys, registry {})", model_path, config.host, port, n_keys,
               config.registry.empty() ? "none" : config.registry);
  std::thread signal_thread([&server, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("signal {}: draining (new requests get 503), then stopping", signal);
    server.drain_and_stop();
  });
  server.listen();
  // listen() also returns when binding failed or stop() came from elsewhere:
  // wake the signal thread so it can be joined.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  spdlog::info("mnemo serve: stopped");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Serve an OpenAI-compatible API (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics)\n"
      "in which each request runs with its own user's adapter from the registry. SIGTERM drains and exits 0.");
  serve->add_option("--config", options->config, "serve config (YAML, e.g. configs/serve.yaml); default: built in");
  serve->add_option("--model", options->model, "base model (HF directory or GGUF); default: the config's, else the default model");
  serve->add_option("--quant", options->quant,
                    "base weights: none, int8 or int4 (CPU, float32; adapters stay float32 on top; "
                    "default: the config's, none)")
      ->check(CLI::IsMember({"none", "int8", "int4"}));
  serve->add_option("--registry", options->registry, "adapter registry (default: the config's, else $MNEMO_HOME/registry …)");
  serve->add_option("--keys", options->keys, "API keys file (YAML; see serve/api_keys.h)");
  serve->add_option("--host", options->host, "address to listen on (default: the config's, 127.0.0.1)");
  serve->add_option("--port", options->port, "port (0: any free port; default: the config's, 8000)");
  serve->add_option("--port-file", options->port_file, "write the port listened on to this file once bound");
  serve->callback([options] { run_serve(*options); });
}

}  // namespace mnemo
