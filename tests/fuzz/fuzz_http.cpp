// Fuzz target for HTTP request bodies of the OpenAI-compatible routes: a body
// parses into a call or is refused with an ApiError (the server's one error
// type, a 4xx status), never anything else.
#include "fuzz/fuzz_target.h"
#include "serve/openai_api.h"
#include "serve/serve_config.h"

namespace mnemo::fuzz {
namespace {

MNEMO_FUZZ_TARGET(http_body) {
  static const ServeConfig config;
  const std::string body(data);
  for (bool chat : {false, true}) {
    try {
      CompletionCall call = parse_completion_call(body, chat, config);
      if (call.request.prompt.empty() && call.request.messages.empty() && call.prompt_text.empty())
        violation("http body: accepted a call with no prompt");
    } catch (const ApiError& e) {
      if (e.status < 400 || e.status > 499 || std::string(e.what()).empty())
        violation("http body: refused with status " + std::to_string(e.status));
    } catch (const std::exception& e) {
      violation(std::string("http body: threw ") + e.what() + " instead of ApiError");
    }
  }
}

}  // namespace
}  // namespace mnemo::fuzz
