// Per-op timing for compiled code built with profiling on (nnc bench
// --profile): the entry function calls nnc_rt_profile_mark(table, i) before
// op i and with -1 at its end; each call adds the time since the previous
// mark on this thread to the previous op's slot.
#include <chrono>
#include <cstdint>

namespace {
struct LastMark {
  double *table = nullptr;
  int64_t index = -1;
  std::chrono::steady_clock::time_point when;
};
thread_local LastMark last;
} // namespace

extern "C" void nnc_rt_profile_mark(double *table, int64_t index) {
  auto now = std::chrono::steady_clock::now();
  if (last.table == table && last.index >= 0)
    table[last.index] += std::chrono::duration<double>(now - last.when).count();
  last.table = index >= 0 ? table : nullptr;
  last.index = index;
  // Not counting this call's own cost in the next op.
  last.when = std::chrono::steady_clock::now();
}
