// The generations running on one worker, by name: who started each, and how to stop it (the
// cancel API, docs/protocol.md "Cancel a generation").
//
// Rules:
// - One per worker, used on that worker's thread only.
// - An entry lives exactly as long as its answer runs: add() gives it a serial, and the answer
//   holds a lease whose release calls remove() with that serial (server/generations.hpp). A
//   release that comes late never removes a newer entry of the same name.
// - stop() may remove the entry it stops while it runs (stopping an answer releases its lease):
//   it calls a copy of the entry's stop function and touches the table only before.
// - The table is bounded by what bounds running answers: each holds a slot of its upstream's
//   max_concurrent (all workers together). ssegw_generations_running counts the entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ssegw::hub {

class GenerationRegistry {
 public:
  // Stops the answer; false when it had ended already.
  using Stop = std::function<bool()>;

  // Registers a running generation. Its serial (never 0), or 0 when the name is taken already
  // (128 random bits: never in practice; the second answer then just cannot be cancelled).
  uint64_t add(const std::string& name, std::string starter, Stop stop);
  // Removes the entry of that name if it is still the one add() numbered `serial`.
  void remove(const std::string& name, uint64_t serial);

  // Who started the generation of that name, or null when none runs here.
  const std::string* starter(std::string_view name) const;
  // Stops the generation of that name: false when none runs here, or it had ended.
  bool stop(std::string_view name);

  size_t size() const { return entries_.size(); }
  // Calls f(name, starter) for every entry, in no particular order (the Redis refresh).
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [name, entry] : entries_) f(name, entry.starter);
  }

 private:
  struct Entry {
    uint64_t serial;
    std::string starter;
    Stop stop;
  };
  // Heterogeneous lookup: a string_view finds its entry without a copy.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  uint64_t next_serial_ = 1;
};

}  // namespace ssegw::hub
