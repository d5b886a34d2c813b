// SSEGW_CHECK(condition): an invariant whose breach would corrupt memory (a slot past the end, a
// pointer left in a list), checked in every build type. assert() stays for the invariants that
// only debugging needs; this one is for the states that must never be reached.
//
// A failed check writes "ssegw: check failed at FILE:LINE: CONDITION" on stderr and aborts: no
// exception, no unwinding through the state it just found broken. The passing case is a single
// branch, predicted taken, with the failure path out of line; still, keep it off per-event,
// per-subscriber loops unless that one branch is all it costs.
#pragma once

namespace ssegw::base {

[[noreturn, gnu::cold, gnu::noinline]] void check_failed(const char* file, int line,
                                                         const char* condition) noexcept;

}  // namespace ssegw::base

#define SSEGW_CHECK(condition)                       \
  (__builtin_expect(static_cast<bool>(condition), 1) \
       ? static_cast<void>(0)                        \
       : ::ssegw::base::check_failed(__FILE__, __LINE__, #condition))
