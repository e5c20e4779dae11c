// A serving request as callers see it: what they submit, the states it moves
// through, and the events it streams back. The engine keeps each request's
// whole state in one struct (engine.cpp: Sequence); this is its public face.
#pragma once

#include "tokenizer/chat_template.h"
#include "model/generate.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

// Waiting → [LoadingAdapter →] Prefilling → Decoding → Finished, and from any
// of the first four to Cancelled or Failed. A preempted request goes back to
// Waiting and recomputes what it had (nothing is lost, nothing is sent twice).
enum class RequestState { Waiting, LoadingAdapter, Prefilling, Decoding, Finished, Cancelled, Failed };
const char* state_name(RequestState state);

struct RequestTimings {
  double queue_ms = 0;        // submitted → first scheduled (adapter load included)
  double adapter_load_ms = 0; // waiting for its adapter to reach a slot (0 on a slot hit)
  double first_token_ms = 0;  // submitted → first token
  double total_ms = 0;        // submitted → final event
  int64_t preemptions = 0;
  std::vector<float> inter_token_ms;  // between consecutive generated tokens
};

struct RequestEvent {
  uint64_t id = 0;
  RequestState state = RequestState::Decoding;  // the state after this event
  std::string text;     // text that became final with this event (may be empty: one event per token)
  bool final = false;   // the request's last event; the fields below are set on it
  FinishReason finish_reason = FinishReason::Length;
  std::string error;    // Failed: why (the user's adapter is corrupt, was erased, …)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::vector<int32_t> tokens;            // final event: every generated token
  std::optional<int64_t> adapter_version; // the user's adapter version that serves it (every event); none: base model
  RequestTimings timings;
};

// Called on the engine's step thread, in order: once per generated token
// (whose text may be held back: a partial character or a possible stop
// string), then once with final = true; it must not
// block (hand the event to a queue) and must not call back into the engine.
using RequestCallback = std::function<void(const RequestEvent&)>;

struct EngineRequest {
  std::vector<int32_t> prompt;        // token ids; or, when empty,
  std::vector<ChatMessage> messages;  // a conversation rendered with the model's chat template
  std::string user;                   // whose memory; empty: the base model
  GenerationParams params;            // stop_token_ids empty: the model's end-of-turn ids
  RequestCallback on_event;
};

}  // namespace mnemo
