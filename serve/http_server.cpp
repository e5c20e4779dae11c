#include "serve/http_server.h"

#include "adapters/base_fingerprint.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"
#include "serve/engine.h"
#include "serve/openai_api.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace mnemo {

using nlohmann::json;

namespace {

// Events of one request, from the engine's step thread to the HTTP thread
// that answers it.
struct Channel {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<RequestEvent> events;

  void push(const RequestEvent& event) {
    {
      std::lock_guard lock(mutex);
      events.push_back(event);
    }
    ready.notify_all();
  }
  // The next event, or none after `timeout`.
  std::optional<RequestEvent> pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    if (!ready.wait_for(lock, timeout, [&] { return !events.empty(); })) return std::nullopt;
    RequestEvent event = std::move(events.front());
    events.pop_front();
    return event;
  }
};

prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace

// The metrics, kept with prometheus-cpp's core library.
struct Metrics {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests = prometheus::BuildCounter()
                                                          .Name("mnemo_http_requests_total")
                                                          .Help("HTTP requests by route and status")
                                                          .Register(*registry);
  prometheus::Counter& prompt_tokens = prometheus::BuildCounter()
                                           .Name("mnemo_prompt_tokens_total")
                                           .Help("prompt tokens of finished requests")
                                           .Register(*registry)
                                           .Add({});
  prometheus::Counter& completion_tokens = prometheus::BuildCounter()
                                               .Name("mnemo_completion_tokens_total")
                                               .Help("generated tokens of finished requests")
                                               .Register(*registry)
                                               .Add({});
  prometheus::Family<prometheus::Gauge>& engine_gauges =
      prometheus::BuildGauge().Name("mnemo_engine").Help("engine state at scrape time, by quantity").Register(*registry);
  prometheus::Family<prometheus::Counter>& adapter_events = prometheus::BuildCounter()
                                                                .Name("mnemo_adapter_cache_events_total")
                                                                .Help("adapter cache hits, misses, evictions, failures")
                                                                .Register(*registry);
  prometheus::Histogram& first_token = prometheus::BuildHistogram()
                                           .Name("mnemo_time_to_first_token_seconds")
                                           .Help("submit to first token")
                                           .Register(*registry)
                                           .Add({}, latency_buckets());
  prometheus::Histogram& inter_token = prometheus::BuildHistogram()
                                           .Name("mnemo_inter_token_latency_seconds")
                                           .Help("between consecutive tokens of a request")
                                           .Register(*registry)
                                           .Add({}, latency_buckets());
  prometheus::Histogram& request_latency = prometheus::BuildHistogram()
                                               .Name("mnemo_request_latency_seconds")
                                               .Help("submit to the final event")
                                               .Register(*registry)
                                               .Add({}, latency_buckets());
  prometheus::Histogram& adapter_load = prometheus::BuildHistogram()
                                            .Name("mnemo_adapter_load_seconds")
                                            .Help("registry to host tier, on the loader thread")
                                            .Register(*registry)
                                            .Add({}, latency_buckets());
  AdapterCacheStats last_adapters;  // what the counters were advanced to

  void observe_final(const RequestEvent& event) {
    prompt_tokens.Increment(static_cast<double>(event.prompt_tokens));
    completion_tokens.Increment(static_cast<double>(event.completion_tokens));
    if (event.completion_tokens > 0) first_token.Observe(event.timings.first_token_ms / 1e3);
    for (float gap : event.timings.inter_token_ms) inter_token.Observe(gap / 1e3);
    request_latency.Observe(event.timings.total_ms / 1e3);
  }

  // Engine counters become Prometheus counters by their growth since the last scrape.
  void update(const EngineStats& stats) {
    auto gauge = [&](const char* quantity, double value) { engine_gauges.Add({{"quantity", quantity}}).Set(value); };
    gauge("queue_depth", static_cast<double>(stats.waiting));
    gauge("running_sequences", static_cast<double>(stats.running));
    gauge("kv_blocks_total", static_cast<double>(stats.kv_blocks_total));
    gauge("kv_blocks_free", static_cast<double>(stats.kv_blocks_free));
    gauge("adapter_slots_used", static_cast<double>(stats.adapters.slots_used));
    gauge("adapter_slots_pinned", static_cast<double>(stats.adapters.slots_pinned));
    gauge("adapter_host_bytes", static_cast<double>(stats.adapters.host_bytes));
    gauge("requests_finished", static_cast<double>(stats.finished));
    gauge("requests_cancelled", static_cast<double>(stats.cancelled));
    gauge("requests_failed", static_cast<double>(stats.failed));
    const AdapterCacheStats& now = stats.adapters;
    auto advance = [&](const char* event, int64_t current, int64_t before) {
      if (current > before) adapter_events.Add({{"event", event}}).Increment(static_cast<double>(current - before));
    };
    advance("slot_hit", now.slot_hits, last_adapters.slot_hits);
    advance("host_hit", now.host_hits, last_adapters.host_hits);
    advance("registry_load", now.registry_loads, last_adapters.registry_loads);
    advance("load_failure", now.load_failures, last_adapters.load_failures);
    advance("slot_eviction", now.slot_evictions, last_adapters.slot_evictions);
    advance("host_eviction", now.host_evictions, last_adapters.host_evictions);
    const int64_t new_loads = now.registry_loads - last_adapters.registry_loads;
    const auto& samples = now.registry_load_ms;
    for (int64_t i = std::max<int64_t>(0, static_cast<int64_t>(samples.size()) - new_loads);
         i < static_cast<int64_t>(samples.size()); ++i)
      adapter_load.Observe(samples[static_cast<size_t>(i)] / 1e3);
    last_adapters = now;
  }
};

struct HttpServer::State {
  ServeConfig config;
  const BaseModel& model;
  Registry* registry;
  ApiKeys keys;
  std::unique_ptr<Engine> engine;
  httplib::Server server;
  Metrics metrics;
  std::mutex metrics_mutex;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> draining{false};
  socket_t listen_socket = -1;  // the last socket httplib made to listen on
  int64_t started = std::time(nullptr);

  State(ServeConfig c, const BaseModel& m, Registry* r, ApiKeys k)
      : config(std::move(c)), model(m), registry(r), keys(std::move(k)) {}

  Caller authenticate(const httplib::Request& request) {
    const std::string header = request.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (header.compare(0, prefix.size(), prefix) != 0)
      throw ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "", "invalid_api_key");
    std::optional<Caller> caller = keys.find(header.substr(prefix.size()));
    if (!caller) throw ApiError(401, "invalid API key", "", "invalid_api_key");
    return *caller;
  }

  void require_admin(const httplib::Request& request) {
    if (authenticate(request).role != KeyRole::Admin)
      throw ApiError(403, "this route needs an admin key", "", "permission_denied");
  }

  void completion(const httplib::Request& request, httplib::Response& response, bool chat);
  void models(const httplib::Request& request, httplib::Response& response);
  void load_adapter(const httplib::Request& request, httplib::Response& response);
  void unload_adapter(const httplib::Request& request, httplib::Response& response);
};

namespace {

// One place turns every failure into an HTTP response with OpenAI's error body.
void respond_with_error(httplib::Response& response, int status, const std::string& message,
                        const std::string& param = "", const std::string& code = "") {
  response.status = status;
  if (status == 429 || status == 503) response.set_header("Retry-After", "1");
  // Messages may quote what the client sent: bytes that are not UTF-8 become U+FFFD.
  response.set_content(error_body(status, message, param, code).dump(-1, ' ', false, json::error_handler_t::replace),
                       "application/json");
}

template <typename Handler>
httplib::Server::Handler guarded(Handler handler) {
  return [handler](const httplib::Request& request, httplib::Response& response) {
    try {
      handler(request, response);
    } catch (const ApiError& e) {
      respond_with_error(response, e.status, e.what(), e.param, e.code);
    } catch (const RegistryNotFound& e) {
      respond_with_error(response, 404, e.what(), "", "not_found");
    } catch (const Error& e) {
      respond_with_error(response, 400, e.what(), "", "invalid_request");
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", request.method, request.path, e.what());
      respond_with_error(response, 500, "internal server error", "", "internal_error");
    }
  };
}

// Holds a place in the bounded queue for as long as a request runs.
struct QueueSlot {
  std::atomic<int64_t>& in_flight;
  ~QueueSlot() { in_flight.fetch_sub(1); }
};

// The route as a metrics label: only the served routes, so that requests for
// made-up paths cannot grow the label set (and the process) without bound.
std::string route_label(const std::string& path) {
  static const std::set<std::string> kRoutes = {"/v1/completions", "/v1/chat/completions", "/v1/models",
                                                "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/health",
                                                "/metrics"};
  return kRoutes.count(path) ? path : "other";
}

std::string finish_reason_name(FinishReason reason) { return reason == FinishReason::Stop ? "stop" : "length"; }

}  // namespace

void HttpServer::State::completion(const httplib::Request& http_request, httplib::Response& response, bool chat) {
  const Caller caller = authenticate(http_request);
  if (draining) throw ApiError(503, "the server is shutting down", "", "draining");
  CompletionCall call = parse_completion_call(http_request.body, chat, config);
  // Whose memory: a user key's own; a service or admin key names the end user.
  std::string user = caller.role == KeyRole::User ? caller.user : call.end_user.value_or("");
  if (!user.empty()) {
    try {
      validate_user_id(user);
    } catch (const Error& e) {
      throw ApiError(400, e.what(), "user", "invalid_user");
    }
  }
  call.request.user = user;
  if (!call.prompt_text.empty()) call.request.prompt = model.tokenizer->encode(call.prompt_text);

  if (in_flight.fetch_add(1) >= config.queue_limit) {
    in_flight.fetch_sub(1);
    throw ApiError(429, fmt::format("the server is at its limit of {} requests; retry shortly", config.queue_limit),
                   "", "rate_limit_exceeded");
  }
  // Built in place: a temporary QueueSlot would give the place back at once.
  std::shared_ptr<QueueSlot> queue_slot(new QueueSlot{in_flight});
  auto channel = std::make_shared<Channel>();
  call.request.on_event = [channel](const RequestEvent& event) { channel->push(event); };
  uint64_t id = 0;
  try {
    id = engine->submit(std::move(call.request));
  } catch (const Error& e) {
    throw ApiError(400, e.what(), chat ? "messages" : "prompt", "invalid_prompt");
  }

  auto result = std::make_shared<CompletionResult>();
  result->id = fmt::format("{}-{}-{}", chat ? "chatcmpl" : "cmpl", started, id);
  result->created = std::time(nullptr);
  auto fail_for = [&](const RequestEvent& event) {
    if (event.state == RequestState::Cancelled) throw ApiError(503, "the request was cancelled", "", "cancelled");
    throw ApiError(500, event.error, "", "generation_failed");
  };
  auto header_for = [&](std::optional<int64_t> version) {
    result->fingerprint = system_fingerprint(user, version);
    response.set_header("X-Mnemo-Adapter", version ? fmt::format("{}@{}", user, *version) : "base");
  };

  if (!call.stream) {
    RequestEvent final;
    while (true) {
      std::optional<RequestEvent> event = channel->pop(std::chrono::seconds(60));
      if (!event) continue;
      result->text += event->text;
      if (event->final) {
        final = std::move(*event);
        break;
      }
    }
    {
      std::lock_guard lock(metrics_mutex);
      metrics.observe_final(final);
    }
    if (final.state != RequestState::Finished) fail_for(final);
    header_for(final.adapter_version);
    result->finish_reason = finish_reason_name(final.finish_reason);
    result->prompt_tokens = final.prompt_tokens;
    result->completion_tokens = final.completion_tokens;
    response.set_content(completion_response(call, *result).dump(-1, ' ', false, json::error_handler_t::replace),
                         "application/json");
    return;
  }

  // A stream: the first event decides between an error response and a 200
  // whose header can already say which adapter serves it.
  RequestEvent first;
  while (true) {
    std::optional<RequestEvent> event = channel->pop(std::chrono::seconds(60));
    if (event) {
      first = std::move(*event);
      break;
    }
  }
  if (first.final && first.state != RequestState::Finished) {
    std::lock_guard lock(metrics_mutex);
    metrics.observe_final(first);
    fail_for(first);
  }
  header_for(first.adapter_version);
  response.set_header("Cache-Control", "no-cache");
  auto pending = std::make_shared<std::optional<RequestEvent>>(std::move(first));
  auto finished = std::make_shared<bool>(false);
  auto sent_first = std::make_shared<bool>(false);
  auto shared_call = std::make_shared<CompletionCall>(std::move(call));
  Engine* engine_ptr = engine.get();
  response.set_chunked_content_provider(
      "text/event-stream",
      [this, channel, pending, finished, sent_first, shared_call, result, engine_ptr, id, queue_slot](
          size_t, httplib::DataSink& sink) {
        auto send = [&](const json& chunk) {
          const std::string line = "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        std::optional<RequestEvent> event = std::move(*pending);
        pending->reset();
        if (!event) event = channel->pop(std::chrono::milliseconds(500));
        if (!event) {
          if (!sink.is_writable()) {
            engine_ptr->cancel(id);  // the client went away: free its blocks and slot now
            return false;
          }
          return true;
        }
        if (!event->text.empty() || !*sent_first) {
          if (!send(completion_chunk(*shared_call, *result, event->text, "", !*sent_first))) {
            engine_ptr->cancel(id);
            return false;
          }
          *sent_first = true;
        }
        if (!event->final) return true;
        {
          std::lock_guard lock(metrics_mutex);
          metrics.observe_final(*event);
        }
        result->prompt_tokens = event->prompt_tokens;
        result->completion_tokens = event->completion_tokens;
        if (event->state != RequestState::Finished) {
          send(error_body(500, event->error.empty() ? "the request was cancelled" : event->error));
        } else {
          send(completion_chunk(*shared_call, *result, "", finish_reason_name(event->finish_reason), false));
          if (shared_call->include_usage) send(usage_chunk(*shared_call, *result));
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        *finished = true;
        sink.done();
        return true;
      },
      [finished, engine_ptr, id](bool) {
        if (!*finished) engine_ptr->cancel(id);
      });
}

void HttpServer::State::models(const httplib::Request& request, httplib::Response& response) {
  const Caller caller = authenticate(request);
  json entry = {{"id", config.served_model_name}, {"object", "model"}, {"created", started}, {"owned_by", "mnemo"}};
  // A user key sees whether it has a memory; nobody else's is listed.
  if (caller.role == KeyRole::User) {
    std::optional<int64_t> version = registry ? registry->live_version(caller.user) : std::nullopt;
    entry["memory"] = version ? json{{"user", caller.user}, {"version", *version}} : json(nullptr);
  }
  response.set_content(json{{"object", "list"}, {"data", json::array({entry})}}.dump(), "application/json");
}

namespace {
std::string lora_name_of(const json& body) {
  if (!body.contains("lora_name") || !body["lora_name"].is_string())
    throw ApiError(400, "'lora_name' (the user id) is required", "lora_name", "invalid_value");
  std::string user = body["lora_name"].get<std::string>();
  try {
    validate_user_id(user);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "lora_name", "invalid_value");
  }
  return user;
}

}  // namespace

// vLLM's route, Mnemo's meaning: the adapter at lora_path becomes the live
// version of user lora_name in the registry, which every server picks up.
void HttpServer::State::load_adapter(const httplib::Request& request, httplib::Response& response) {
  require_admin(request);
  json body = parse_json_object(request.body);
  const std::string user = lora_name_of(body);
  if (!body.contains("lora_path") || !body["lora_path"].is_string())
    throw ApiError(400, "'lora_path' (a PEFT adapter directory on this host) is required", "lora_path",
                   "invalid_value");
  if (config.registry.empty()) throw ApiError(400, "this server has no registry to publish into", "", "no_registry");
  RegistryOptions options;
  options.mode = OpenMode::kReadWrite;
  options.actor = "mnemo serve (admin)";
  auto writable = Registry::open(config.registry, options);
  // The registry checks what it stores against the shapes it records; a
  // registry made before it recorded them learns them from the served model.
  if (!writable->base_shapes())
    writable->init(base_model_fingerprint(config.model.empty() ? default_model_path() : config.model),
                   adapter_shapes_to_json(adapter_shapes(model.transformer->config())));
  PublishResult published =
      writable->publish(PublishRequest{body["lora_path"].get<std::string>(), user, "", /*make_live=*/true});
  response.set_content(json{{"status", "ok"}, {"user", published.user}, {"version", published.version}}.dump(),
                       "application/json");
}

void HttpServer::State::unload_adapter(const httplib::Request& request, httplib::Response& response) {
  require_admin(request);
  const std::string user = lora_name_of(parse_json_object(request.body));
  engine->evict_user(user, "the adapter was unloaded by an administrator");
  response.set_content(json{{"status", "ok"}, {"user", user}}.dump(), "application/json");
}

HttpServer::HttpServer(ServeConfig config, const BaseModel& model, Registry* registry, ApiKeys keys)
    : state_(std::make_unique<State>(std::move(config), model, registry, std::move(keys))) {
  State& s = *state_;
  s.engine = std::make_unique<Engine>(model, registry, s.config.engine);
  s.engine->start();
  const size_t threads = static_cast<size_t>(std::clamp<int64_t>(s.config.queue_limit + 16, 16, 512));
  s.server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.server.set_socket_options([&s](socket_t socket) {
    httplib::default_socket_options(socket);
    s.listen_socket = socket;
  });
  s.server.set_payload_max_length(static_cast<size_t>(s.config.body_limit_bytes));
  s.server.set_read_timeout(30, 0);
  s.server.set_write_timeout(30, 0);
  s.server.Post("/v1/completions", guarded([&s](const auto& q, auto& r) { s.completion(q, r, false); }));
  s.server.Post("/v1/chat/completions", guarded([&s](const auto& q, auto& r) { s.completion(q, r, true); }));
  s.server.Get("/v1/models", guarded([&s](const auto& q, auto& r) { s.models(q, r); }));
  s.server.Post("/v1/load_lora_adapter", guarded([&s](const auto& q, auto& r) { s.load_adapter(q, r); }));
  s.server.Post("/v1/unload_lora_adapter", guarded([&s](const auto& q, auto& r) { s.unload_adapter(q, r); }));
  s.server.Get("/health", [&s](const httplib::Request&, httplib::Response& r) {
    r.status = s.draining ? 503 : 200;
    r.set_content(json{{"status", s.draining ? "draining" : "ready"}}.dump(), "application/json");
  });
  s.server.Get("/metrics", guarded([&s](const httplib::Request& q, httplib::Response& r) {
    s.require_admin(q);
    std::lock_guard lock(s.metrics_mutex);
    s.metrics.update(s.engine->stats());
    r.set_content(prometheus::TextSerializer().Serialize(s.metrics.registry->Collect()),
                  "text/plain; version=0.0.4");
  }));
  // Statuses httplib sets itself (no route, payload too large, a malformed
  // request line) get OpenAI's error body too.
  s.server.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    const int status = response.status;
    std::string message = status == 404   ? fmt::format("no route {} {}", request.method, request.path)
                          : status == 413 ? "the request body is larger than this server accepts"
                          : status == 405 ? fmt::format("{} is not allowed on {}", request.method, request.path)
                                          : fmt::format("the request failed with HTTP status {}", status);
    respond_with_error(response, status, message);
  });
  s.server.set_logger([&s](const httplib::Request& request, const httplib::Response& response) {
    std::lock_guard lock(s.metrics_mutex);
    s.metrics.requests.Add({{"route", route_label(request.path)}, {"status", std::to_string(response.status)}})
        .Increment();
  });
}

HttpServer::~HttpServer() {
  stop();
  state_->engine->stop();
}

int HttpServer::bind() {
  State& s = *state_;
  const int port = s.config.port == 0 ? s.server.bind_to_any_port(s.config.host)
                                      : (s.server.bind_to_port(s.config.host, s.config.port) ? s.config.port : -1);
  if (port < 0) fail("cannot listen on {}:{}", s.config.host, s.config.port);
  // Debian's cpp-httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG,
  // compiled into the library): a burst of connections overflows it, and the
  // kernel's SYN cookies then reset some of them (measured: 115 of 1,000
  // connections opened at once). Calling listen() again raises it (Linux).
  if (s.listen_socket >= 0 && ::listen(s.listen_socket, SOMAXCONN) != 0)
    spdlog::warn("cannot raise the listen backlog: {}", std::strerror(errno));
  return port;
}

void HttpServer::listen() { state_->server.listen_after_bind(); }

void HttpServer::drain_and_stop() {
  State& s = *state_;
  s.draining = true;
  // A load balancer polling /health needs time to see "draining" before the
  // port closes: the drain lasts at least drain_min_ms, even with nothing running.
  const auto earliest = std::chrono::steady_clock::now() + std::chrono::milliseconds(s.config.drain_min_ms);
  while (s.in_flight.load() > 0 || std::chrono::steady_clock::now() < earliest)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.server.stop();
}

void HttpServer::stop() { state_->server.stop(); }

}  // namespace mnemo
