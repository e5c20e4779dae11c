#include "tokenizer/json_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "model/error.h"

namespace mnemo {

std::string byte_size_text(uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= (1ull << 10) && bytes % (1ull << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

nlohmann::json parse_json_input(std::string_view text, const std::string& where, const JsonLimits& limits,
                                const JsonObserver& observe, uint64_t first_byte) {
  using json = nlohmann::json;
  if (text.size() > limits.max_bytes)
    fail("{}: {} bytes of JSON, more than the limit of {}", where, text.size(), byte_size_text(limits.max_bytes));
  // nlohmann's parser itself does not recurse, but copying, comparing and
  // dumping a value do: the depth limit keeps them off the end of the stack.
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= limits.max_depth)
      fail("{}: arrays and objects nested {} deep, more than the limit of {}", where, depth + 1, limits.max_depth);
    if ((event == json::parse_event_t::key || event == json::parse_event_t::value) && parsed.is_string()) {
      const uint64_t length = parsed.get_ref<const std::string&>().size();
      if (length > limits.max_string_bytes)
        fail("{}: a {} of {} bytes, more than the limit of {}", where,
             event == json::parse_event_t::key ? "key" : "string", length, byte_size_text(limits.max_string_bytes));
    }
    if (observe) observe(depth, event, parsed);
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON at byte offset {}: {}", where, first_byte + e.byte, e.what());
  } catch (const json::exception& e) {  // e.g. out_of_range for a number too large for a double
    fail("{}: not valid JSON: {}", where, e.what());
  }
}

nlohmann::json read_json_file(const std::string& path, const char* what, const JsonLimits& limits) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("{}: cannot open the {}: {}", path, what, std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) fail("{}: cannot stat the {}: {}", path, what, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("{}: the {} is not a regular file", path, what);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > limits.max_bytes)
    fail("{}: the {} is {} bytes, more than the limit of {}", path, what, size, byte_size_text(limits.max_bytes));
  std::string text(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, text.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: read error in the {}: {}", path, what, std::strerror(errno));
    if (n == 0) break;  // shrank while being read
    done += static_cast<uint64_t>(n);
  }
  text.resize(done);
  return parse_json_input(text, path, limits);
}

}  // namespace mnemo
