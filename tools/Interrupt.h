// Ctrl-C (and SIGTERM) for work that should stop cleanly: the first signal
// sets a flag that training polls between steps, so the run can keep what it
// did (the REPL returns to its prompt; nnc train writes its checkpoint, model
// and log); a second one before the work has stopped ends the process as the
// signal would.
#pragma once

#include <atomic>
#include <csignal>

namespace nnc::driver {

/// Set by the first signal; the work that polls it clears it when done.
extern std::atomic<bool> interrupted;
/// The signal that set `interrupted` (SIGINT or SIGTERM), 0 if none.
extern std::atomic<int> interruptSignal;

/// Installs the handler for SIGINT (and SIGTERM with `terminate`) until the
/// object goes away, then restores the old handlers. Reads are not
/// restarted, so a blocking read (the REPL's line editor) sees the signal.
class CatchInterrupts {
public:
  explicit CatchInterrupts(bool terminate);
  ~CatchInterrupts();
  CatchInterrupts(const CatchInterrupts &) = delete;
  CatchInterrupts &operator=(const CatchInterrupts &) = delete;

private:
  bool terminate_;
  struct sigaction oldInt_ {
  }, oldTerm_{};
};

} // namespace nnc::driver
