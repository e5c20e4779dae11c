// `mnemo serve`'s configuration: one plain struct, read once from YAML
// (configs/serve.yaml), validated, and passed down.
#pragma once

#include "serve/engine.h"

#include <cstdint>
#include <string>

namespace mnemo {

struct ServeConfig {
  std::string model;                   // HF directory or GGUF; "" = the default model
  std::string dtype = "float32";
  std::string device = "cpu";
  std::string quant = "none";          // none, int8, int4: the base weights (CPU, float32)
  std::string registry;                // "" = resolve_registry_root's default
  std::string keys_file;               // YAML list of API keys (api_keys.h); relative to the config file
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string served_model_name = "mnemo";  // the `model` clients name
  int64_t queue_limit = 256;           // requests waiting or running before 429
  int64_t body_limit_bytes = 1 << 20;  // larger bodies: 413
  int64_t max_tokens_limit = 4096;     // a request's max_tokens above this: 400
  int64_t default_chat_max_tokens = 512;
  int threads = 2;                     // the model's intra-op threads
  int64_t drain_min_ms = 0;            // after SIGTERM, say draining (503) at least this long
  EngineOptions engine;
};

// Reads `path` (every key optional; unknown keys are an error naming the
// line). Throws mnemo::Error naming the file, key and rule.
ServeConfig read_serve_config(const std::string& path);
void validate_serve_config(const ServeConfig& config, const std::string& source);

}  // namespace mnemo
