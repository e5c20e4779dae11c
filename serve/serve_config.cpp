#include "serve/serve_config.h"

#include "model/error.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <map>

namespace mnemo {
namespace {

using Reader = std::function<void(const YAML::Node&)>;

template <typename T>
Reader into(T& target) {
  return [&target](const YAML::Node& node) { target = node.as<T>(); };
}

void read_map(const YAML::Node& node, const std::map<std::string, Reader>& readers, const std::string& source,
              const std::string& prefix) {
  if (!node.IsMap()) fail("{}: {} must be a mapping", source, prefix.empty() ? "the file" : prefix);
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    auto reader = readers.find(key);
    if (reader == readers.end()) fail("{}: unknown key {} (line {})", source, name, entry.first.Mark().line + 1);
    try {
      reader->second(entry.second);
    } catch (const YAML::Exception&) {
      fail("{}: {} has a value of the wrong type (line {})", source, name, entry.second.Mark().line + 1);
    }
  }
}

}  // namespace

ServeConfig read_serve_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail("{}: cannot read the serve config", path);
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML: {}", path, e.what());
  }
  ServeConfig config;
  int64_t kv_memory_mb = config.engine.kv_memory_bytes >> 20, host_cache_mb = config.engine.adapters.host_bytes >> 20;
  std::map<std::string, Reader> engine = {
      {"max_batch_tokens", into(config.engine.max_batch_tokens)},
      {"max_sequences", into(config.engine.max_sequences)},
      {"kv_block_tokens", into(config.engine.kv_block_tokens)},
      {"kv_memory_mb", into(kv_memory_mb)},
      {"adapter_slots", into(config.engine.adapters.device_slots)},
      {"adapter_rank_capacity", into(config.engine.adapters.rank_capacity)},
      {"host_cache_mb", into(host_cache_mb)},
      {"registry_poll_ms", into(config.engine.registry_poll_ms)}};
  std::map<std::string, Reader> limits = {{"queue", into(config.queue_limit)},
                                          {"body_bytes", into(config.body_limit_bytes)},
                                          {"max_tokens", into(config.max_tokens_limit)},
                                          {"default_chat_max_tokens", into(config.default_chat_max_tokens)}};
  if (!root.IsNull())
    read_map(root,
             {{"model", into(config.model)},
              {"dtype", into(config.dtype)},
              {"device", into(config.device)},
              {"quant", into(config.quant)},
              {"registry", into(config.registry)},
              {"keys_file", into(config.keys_file)},
              {"host", into(config.host)},
              {"port", into(config.port)},
              {"served_model_name", into(config.served_model_name)},
              {"threads", into(config.threads)},
              {"drain_min_ms", into(config.drain_min_ms)},
              {"limits", [&](const YAML::Node& n) { read_map(n, limits, path, "limits"); }},
              {"engine", [&](const YAML::Node& n) { read_map(n, engine, path, "engine"); }}},
             path, "");
  config.engine.kv_memory_bytes = kv_memory_mb << 20;
  config.engine.adapters.host_bytes = host_cache_mb << 20;
  // A keys file named relative to the config is found beside it.
  if (!config.keys_file.empty() && std::filesystem::path(config.keys_file).is_relative())
    config.keys_file = (std::filesystem::path(path).parent_path() / config.keys_file).string();
  validate_serve_config(config, path);
  return config;
}

void validate_serve_config(const ServeConfig& c, const std::string& source) {
  auto check = [&](bool ok, const char* field, const std::string& rule) {
    if (!ok) fail("{}: {} {}", source, field, rule);
  };
  check(c.dtype == "float32" || c.dtype == "bfloat16" || c.dtype == "float16", "dtype",
        "must be float32, bfloat16 or float16");
  check(c.quant == "none" || c.quant == "int8" || c.quant == "int4", "quant", "must be none, int8 or int4");
  check(c.quant == "none" || (c.dtype == "float32" && c.device == "cpu"), "quant",
        "int8/int4 weights are for dtype float32 on device cpu");
  check(c.port >= 0 && c.port <= 65535, "port", "must be 0..65535 (0: any free port)");
  check(!c.served_model_name.empty(), "served_model_name", "must not be empty");
  check(c.queue_limit >= 1, "limits.queue", "must be >= 1");
  check(c.body_limit_bytes >= 1024, "limits.body_bytes", "must be >= 1024");
  check(c.max_tokens_limit >= 1, "limits.max_tokens", "must be >= 1");
  check(c.default_chat_max_tokens >= 1 && c.default_chat_max_tokens <= c.max_tokens_limit,
        "limits.default_chat_max_tokens", "must be 1..limits.max_tokens");
  check(c.threads >= 1 && c.threads <= 1024, "threads", "must be 1..1024");
  check(c.drain_min_ms >= 0 && c.drain_min_ms <= 600000, "drain_min_ms", "must be 0..600000");
  check(c.engine.max_batch_tokens >= 1, "engine.max_batch_tokens", "must be >= 1");
  check(c.engine.max_sequences >= 1, "engine.max_sequences", "must be >= 1");
  check(c.engine.kv_block_tokens >= 1 && c.engine.kv_block_tokens <= 1024, "engine.kv_block_tokens",
        "must be 1..1024");
  check(c.engine.kv_memory_bytes >= (int64_t{1} << 20), "engine.kv_memory_mb", "must be >= 1");
  check(c.engine.adapters.device_slots >= 1, "engine.adapter_slots", "must be >= 1");
  check(c.engine.adapters.rank_capacity >= 0 && c.engine.adapters.rank_capacity <= 64,
        "engine.adapter_rank_capacity", "must be 0..64");
  check(c.engine.adapters.host_bytes >= 0, "engine.host_cache_mb", "must be >= 0");
  check(c.engine.registry_poll_ms >= 0, "engine.registry_poll_ms", "must be >= 0");
}

}  // namespace mnemo
