#include "gateway/base/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>

#include "gateway/base/json.hpp"

namespace ssegw::base::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void set_level(Level level) {
  g_level.store(static_cast<int>(level));
}

bool parse_level(std::string_view name, Level& level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (name == level_name(l)) {
      level = l;
      return true;
    }
  }
  return false;
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load();
}

namespace {

void write_line(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  std::string line = "{\"level\":\"";
  line += level_name(level);
  line += "\",\"msg\":";
  append_json_string(line, msg);
  for (const Field& f : fields) {
    line += ',';
    append_json_string(line, f.key);
    line += ':';
    if (f.quoted)
      append_json_string(line, f.text);
    else
      line += f.number;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  line += ",\"ts\":";
  line += std::to_string(ms);
  line += "}\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (enabled(level)) write_line(level, msg, fields);
}

void record(std::string_view msg, std::initializer_list<Field> fields) {
  write_line(Level::kInfo, msg, fields);
}

}  // namespace ssegw::base::log
