// The OpenAI-compatible HTTP front of the engine (cpp-httplib): routes, who
// the caller is, errors as OpenAI error bodies in one place, server-sent-event
// streams, Prometheus metrics (prometheus-cpp), and draining on shutdown.
//
//   POST /v1/completions, /v1/chat/completions   any key
//   GET  /v1/models                              any key
//   POST /v1/load_lora_adapter, /v1/unload_lora_adapter, GET /metrics   admin key
//   GET  /health                                 no key: {"status": "ready" | "draining"}
//
// Every completion says which adapter served it: the X-Mnemo-Adapter header
// ("<user>@<version>", or "base") and system_fingerprint.
#pragma once

#include "serve/api_keys.h"
#include "serve/serve_config.h"

#include <atomic>
#include <memory>
#include <string>

namespace mnemo {

struct BaseModel;
class Engine;
class Registry;

class HttpServer {
 public:
  // REQUIRES: model and registry (may be null) outlive the server.
  HttpServer(ServeConfig config, const BaseModel& model, Registry* registry, ApiKeys keys);
  ~HttpServer();

  // Binds config.host:config.port (0: a free port) and returns the port.
  int bind();
  // Serves until stop(); REQUIRES: bind() first.
  void listen();
  // New requests get 503 and /health says draining; returns once the
  // requests in flight have finished and config.drain_min_ms has passed,
  // then stops listen().
  void drain_and_stop();
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mnemo
