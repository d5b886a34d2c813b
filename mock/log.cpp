#include "mock/log.hpp"

#include <unistd.h>

#include <chrono>
#include <string>

#include "mock/json.hpp"

namespace ssegw::mock {

void log_line(std::string_view level, std::string_view msg, std::string_view fields) {
  using namespace std::chrono;
  std::string line = "{\"level\":";
  append_json(line, level);
  line += ",\"msg\":";
  append_json(line, msg);
  line += fields;
  line += ",\"ts\":";
  line +=
      std::to_string(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  line += "}\n";
  for (size_t done = 0; done < line.size();) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace ssegw::mock
