#include "trainer/train_progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <string>

namespace mnemo {

TrainProgressLine::TrainProgressLine(int64_t users) : users_(users), tty_(::isatty(2)) {}

void TrainProgressLine::update(int64_t users_done, double fraction_of_group, int64_t group_size, double loss) {
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double done = static_cast<double>(users_done) + fraction_of_group * static_cast<double>(group_size);
  double per_hour = elapsed > 0 ? done / elapsed * 3600 : 0;
  double left = done > 0 ? elapsed / done * (static_cast<double>(users_) - done) : 0;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(kWidth * done / static_cast<double>(users_));
  std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kWidth - filled), '.');
  std::string line = fmt::format("train [{}] {:.1f}/{} users, {:.1f} users/h, loss {:.3f}, {:.0f} s left", bar, done,
                                 users_, per_hour, loss, left);
  if (tty_) {
    std::fprintf(stderr, "\r%-110s", line.c_str());
    if (done >= static_cast<double>(users_)) std::fputc('\n', stderr);
  } else if (done >= static_cast<double>(users_) || now - last_ > std::chrono::seconds(15)) {
    spdlog::info("{}", line);
    last_ = now;
  }
}

}  // namespace mnemo
