// The progress of `mnemo train`: a bar redrawn in place on a terminal, a log
// line every 15 s otherwise; users done, users/hour and the time left.
#pragma once

#include <chrono>
#include <cstdint>

namespace mnemo {

class TrainProgressLine {
 public:
  explicit TrainProgressLine(int64_t users);
  // `users_done` users finished, and `fraction_of_group` of the `group_size`
  // users training now; `loss` is the group's latest mean loss.
  void update(int64_t users_done, double fraction_of_group, int64_t group_size, double loss);

 private:
  using Clock = std::chrono::steady_clock;
  int64_t users_;
  bool tty_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = Clock::now();
};

}  // namespace mnemo
