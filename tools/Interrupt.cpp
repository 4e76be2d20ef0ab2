#include "tools/Interrupt.h"

namespace nnc::driver {

std::atomic<bool> interrupted{false};
std::atomic<int> interruptSignal{0};

namespace {

extern "C" void onInterrupt(int sig) {
  if (interrupted.exchange(true)) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  interruptSignal = sig;
}

} // namespace

CatchInterrupts::CatchInterrupts(bool terminate) : terminate_(terminate) {
  struct sigaction sa {};
  sa.sa_handler = onInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, &oldInt_);
  if (terminate_)
    sigaction(SIGTERM, &sa, &oldTerm_);
}

CatchInterrupts::~CatchInterrupts() {
  sigaction(SIGINT, &oldInt_, nullptr);
  if (terminate_)
    sigaction(SIGTERM, &oldTerm_, nullptr);
}

} // namespace nnc::driver
