#include "trainer/job_metrics.h"

#include "adapters/file_system.h"
#include "model/error.h"

#if MNEMO_WITH_PROMETHEUS
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#endif


#include <chrono>
#include <cstdio>
#include <map>

namespace mnemo {

void write_job_metrics(const std::string& path, const nlohmann::ordered_json& summary) {
#if MNEMO_WITH_PROMETHEUS
  prometheus::Registry registry;
  auto& users = prometheus::BuildGauge()
                    .Name("mnemo_train_users")
                    .Help("Users of the last mnemo train run, by what became of them")
                    .Register(registry);
  std::map<std::string, double> by_state = {
      {"published", 0}, {"trained", 0}, {"rejected", 0}, {"failed", 0}, {"unchanged", 0}};
  for (const auto& entry : summary.at("users")) by_state[entry.at("state").get<std::string>()] += 1;
  for (const auto& [state, count] : by_state) users.Add({{"state", state}}).Set(count);
  auto& seconds = prometheus::BuildGauge()
                      .Name("mnemo_train_seconds")
                      .Help("Wall time of the last mnemo train run, by phase")
                      .Register(registry);
  for (const auto& [phase, value] : summary.at("seconds").items()) seconds.Add({{"phase", phase}}).Set(value.get<double>());
  prometheus::BuildGauge()
      .Name("mnemo_train_skipped_records")
      .Help("Log records the last run skipped as bad (on_bad_record: skip)")
      .Register(registry)
      .Add({})
      .Set(summary.at("skipped_records").get<double>());
  prometheus::BuildGauge()
      .Name("mnemo_train_last_run_timestamp_seconds")
      .Help("When the last mnemo train run ended (Unix time)")
      .Register(registry)
      .Add({})
      .Set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());

  try {
    write_file_durably(default_file_system(), path, text);
  } catch (const Error& e) {
    fail("{}: cannot write the metrics file: {}", path, e.what());
  }
#else
  (void)summary;
  fail("{}: this build of mnemo has no prometheus-cpp, so it cannot write Prometheus text", path);
#endif
}

}  // namespace mnemo
