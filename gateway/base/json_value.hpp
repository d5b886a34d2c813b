// A small strict JSON reader (RFC 8259) for the few documents the gateway reads from clients:
// the header and claims of a JWT. Hostile input is the normal case here, so:
// - errors are values (no exceptions), and they name the byte offset;
// - the size and the nesting depth are bounded, so recursion cannot exhaust the stack;
// - everything RFC 8259 leaves open is refused: duplicate object keys (two "alg" members must
//   not let two readers see two different tokens), invalid UTF-8, lone surrogates in \u escapes,
//   numbers that do not fit a double, a byte-order mark, anything after the value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ssegw::base {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  using Array = std::vector<JsonValue>;
  using Member = std::pair<std::string, JsonValue>;
  using Object = std::vector<Member>;  // document order; keys are unique

  JsonValue() = default;  // null
  static JsonValue boolean(bool b) { return JsonValue(Storage(std::in_place_index<1>, b)); }
  static JsonValue integer(int64_t n) { return JsonValue(Storage(std::in_place_index<2>, n)); }
  static JsonValue number(double d) { return JsonValue(Storage(std::in_place_index<3>, d)); }
  static JsonValue string(std::string s) {
    return JsonValue(Storage(std::in_place_index<4>, std::move(s)));
  }
  static JsonValue array(Array items) {
    return JsonValue(Storage(std::in_place_index<5>, std::move(items)));
  }
  static JsonValue object(Object members) {
    return JsonValue(Storage(std::in_place_index<6>, std::move(members)));
  }

  Type type() const { return static_cast<Type>(value_.index()); }
  bool is_null() const { return type() == Type::kNull; }

  // Typed views: empty / nullptr when the value has another type, so that a caller checks the
  // type and reads the value in one step.
  std::optional<bool> as_bool() const;
  std::optional<int64_t> as_int() const;    // integers written without fraction or exponent
  std::optional<double> as_number() const;  // any number (an integer converts to double)
  const std::string* as_string() const;
  const Array* as_array() const;
  const Object* as_object() const;

  // The member with this key of an object; nullptr when absent or when this is not an object.
  const JsonValue* find(std::string_view key) const;

 private:
  // The order matches Type.
  using Storage = std::variant<std::monostate, bool, int64_t, double, std::string, Array, Object>;
  explicit JsonValue(Storage v) : value_(std::move(v)) {}

  Storage value_;
};

struct JsonLimits {
  size_t max_bytes = 64 << 10;
  uint32_t max_depth = 32;  // arrays and objects nested inside each other
};

struct JsonResult {
  std::optional<JsonValue> value;  // set on success
  size_t error_offset = 0;         // byte offset of the first error
  std::string error;               // "offset N: what", empty on success

  bool ok() const { return value.has_value(); }
};

// Parses exactly one JSON value, with optional whitespace around it.
JsonResult parse_json(std::string_view text, const JsonLimits& limits = {});

}  // namespace ssegw::base
