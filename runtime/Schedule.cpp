// Learning-rate schedules; see Schedule.h.
#include "runtime/Schedule.h"

#include <algorithm>
#include <cmath>

namespace nnc::runtime {

namespace {

/// Cosine interpolation from `start` (pct = 0) to `end` (pct = 1).
double cosineBetween(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (1.0 + std::cos(M_PI * pct));
}

} // namespace

double scheduledLr(const LrSchedule &s, double lr, int64_t step, int64_t epoch, int64_t epochs, int64_t batches) {
  switch (s.kind) {
  case LrSchedule::Constant:
  case LrSchedule::Plateau:
    return lr;
  case LrSchedule::Step:
    return lr * std::pow(s.gamma, double((epoch - 1) / std::max<int64_t>(1, s.every)));
  case LrSchedule::Exponential:
    return lr * std::pow(s.gamma, double(epoch - 1));
  case LrSchedule::Cosine: {
    double total = double(epochs * batches);
    double warm = std::min(std::round(s.warmup * double(batches)), total);
    double t = double(step);
    if (t < warm)
      return lr * (t + 1) / warm;
    double span = total - warm;
    return span <= 1 ? lr : cosineBetween(lr, s.minLr, (t - warm) / (span - 1));
  }
  case LrSchedule::OneCycle: {
    // torch.optim.lr_scheduler.OneCycleLR (anneal_strategy='cos', two phases).
    double peak = s.maxLr > 0 ? s.maxLr : lr;
    double initial = peak / s.divFactor, final = initial / s.finalDivFactor;
    double total = double(epochs * batches);
    double upEnd = s.pctStart * total - 1, downEnd = total - 1;
    double t = double(step);
    if (t <= upEnd)
      return upEnd <= 0 ? peak : cosineBetween(initial, peak, t / upEnd);
    return downEnd - upEnd <= 0 ? final : cosineBetween(peak, final, std::min(1.0, (t - upEnd) / (downEnd - upEnd)));
  }
  }
  return lr;
}

bool plateauStep(const LrSchedule &s, double baseLr, double value, PlateauState &st) {
  // torch's relative threshold: better means below best * (1 - threshold)
  // for a loss, above best * (1 + threshold) for a (negated) accuracy.
  if (value < st.best - std::fabs(st.best) * s.threshold || (st.best >= 1e300 && std::isfinite(value))) {
    st.best = value;
    st.bad = 0;
    return false;
  }
  if (++st.bad <= s.patience)
    return false;
  st.bad = 0;
  double now = baseLr * st.scale, next = std::max(now * s.factor, s.minLr);
  // torch skips reductions smaller than eps = 1e-8.
  if (now - next <= 1e-8)
    return false;
  st.scale = next / baseLr;
  return true;
}

} // namespace nnc::runtime
