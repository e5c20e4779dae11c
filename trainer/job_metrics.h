// The training job's summary as Prometheus text, for node-exporter's textfile
// collector: users by state, seconds by phase, skipped records and the time
// of the run. Written whole to a temporary file and renamed over `path`, so
// the collector never reads half of it. Per-user numbers stay in the JSON
// summary (a million users would be a million series).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace mnemo {

// `summary` is the JSON summary `mnemo train` writes (cli.cpp). Throws
// mnemo::Error when the file cannot be written, or when this build has no
// prometheus-cpp (the GPU machine's).
void write_job_metrics(const std::string& path, const nlohmann::ordered_json& summary);

}  // namespace mnemo
