#include "gateway/hub/generation_registry.hpp"

#include <utility>

namespace ssegw::hub {

uint64_t GenerationRegistry::add(const std::string& name, std::string starter, Stop stop) {
  uint64_t serial = next_serial_++;
  auto [it, added] = entries_.try_emplace(name, Entry{serial, std::move(starter), std::move(stop)});
  return added ? serial : 0;
}

void GenerationRegistry::remove(const std::string& name, uint64_t serial) {
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.serial == serial) entries_.erase(it);
}

const std::string* GenerationRegistry::starter(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.starter;
}

bool GenerationRegistry::stop(std::string_view name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  // A copy: stopping the answer releases its lease, which erases the entry and its function.
  Stop stop = it->second.stop;
  return stop && stop();
}

}  // namespace ssegw::hub
