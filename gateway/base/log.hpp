// JSON lines on stderr: {"level":"info","msg":"...", ...fields}. One write(2) per line, so lines
// from several workers never interleave. Never used per event on the data path.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace ssegw::base::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// A field: a string or a number.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), text(v), quoted(true) {}
  Field(std::string_view k, const char* v) : key(k), text(v), quoted(true) {}
  Field(std::string_view k, const std::string& v) : key(k), text(v), quoted(true) {}
  Field(std::string_view k, int64_t v) : key(k), number(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, int v) : key(k), number(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, uint64_t v) : key(k), number(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, uint32_t v) : key(k), number(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, bool v) : key(k), number(v ? "true" : "false"), quoted(false) {}
  // null when absent (a time to first token that never came).
  Field(std::string_view k, std::nullptr_t) : key(k), number("null"), quoted(false) {}
  std::string_view key;
  std::string_view text;
  std::string number;
  bool quoted;
};

void set_level(Level level);
bool parse_level(std::string_view name, Level& level);
bool enabled(Level level);
void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
// An info line whatever the level: records an operator asked for by name (log.access), which a
// quieter log.level must not silence.
void record(std::string_view msg, std::initializer_list<Field> fields);

inline void info(std::string_view msg, std::initializer_list<Field> fields = {}) {
  write(Level::kInfo, msg, fields);
}
inline void warn(std::string_view msg, std::initializer_list<Field> fields = {}) {
  write(Level::kWarn, msg, fields);
}
inline void error(std::string_view msg, std::initializer_list<Field> fields = {}) {
  write(Level::kError, msg, fields);
}
inline void debug(std::string_view msg, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::kDebug)) write(Level::kDebug, msg, fields);
}

}  // namespace ssegw::base::log
