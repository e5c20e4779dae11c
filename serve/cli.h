// `mnemo serve`: the OpenAI-compatible server (serve/http_server.h).
#pragma once

namespace CLI {
class App;
}

namespace mnemo {

void add_serve_command(CLI::App& app);

}  // namespace mnemo
