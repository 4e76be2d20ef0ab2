// nnc sample for a generator: COUNT rows of an output computed from noise
// alone (a GAN's generator), written as CSV rows or, for images, as a PNG
// grid; samples of the ring mixture are scored by modes captured.
#include "tools/Commands.h"

#include "runtime/FileUtil.h"
#include "runtime/Png.h"
#include "runtime/Synthetic.h"
#include "tools/Driver.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

namespace nnc::cli {

namespace {

/// [n, C, H, W] images from generated rows: rank 4 as they are, [n, H, W]
/// as one channel, [n, D] by the train data's image geometry (IDX, csv(image
/// = ...)) or a square D; nullopt when the rows are not images.
std::optional<runtime::Tensor> asImages(const runtime::Tensor &t, const frontend::TrainConfig &c) {
  std::vector<int64_t> s = t.shape();
  int64_t n = s[0];
  std::vector<int64_t> chw;
  if (s.size() == 4)
    chw = {s[1], s[2], s[3]};
  else if (s.size() == 3)
    chw = {1, s[1], s[2]};
  else if (s.size() == 2 && !c.data.image.empty())
    chw = c.data.image.size() == 2 ? std::vector<int64_t>{1, c.data.image[0], c.data.image[1]} : c.data.image;
  else if (s.size() == 2 && c.data.kind == frontend::DataSource::IDX) {
    auto side = int64_t(std::lround(std::sqrt(double(s[1]))));
    if (side * side == s[1])
      chw = {1, side, side};
  }
  if (chw.empty() || chw[0] * chw[1] * chw[2] != t.numel() / std::max<int64_t>(1, n))
    return std::nullopt;
  runtime::Tensor r(t.dtype(), {n, chw[0], chw[1], chw[2]});
  std::memcpy(r.data(), t.data(), t.bytes());
  return r;
}

} // namespace

int generateSamples(const Options &o, driver::CompiledModel &m) {
  const auto &low = m.lowered;
  std::string output = o.output.empty() ? (low.outputs.empty() ? "" : low.outputs[0]) : o.output;
  if (std::find(low.outputs.begin(), low.outputs.end(), output) == low.outputs.end())
    throw runtime::Error("model '" + low.name + "' has no output " + (output.empty() ? "" : "'" + output + "' ") +
                         "to sample; declare the generator's, e.g. 'output sample = fake'");
  if (o.outFile.empty())
    throw runtime::Error("nnc sample of a generator writes its samples to a file: give -o samples.csv or -o grid.png");
  bool png = endsWith(o.outFile, ".png");
  if (!png && !endsWith(o.outFile, ".csv"))
    throw runtime::Error("-o must name a .csv (one row per sample) or a .png (a grid of images) file, not '" +
                         o.outFile + "'");
  checkWritable(o.outFile);
  driver::Session session(m);
  session.initialize(m.config.seed);
  session.load(o.load);
  session.trainer().seedDropout(o.seed ? *o.seed : m.config.seed);
  int64_t count = o.count;
  runtime::Tensor x = session.trainer().generate("predict", output, count, std::min<int64_t>(count, 1024));
  if (png) {
    auto images = asImages(x, m.config);
    if (!images)
      throw runtime::Error(fmt::format("output '{}' is {}: a PNG grid needs images [n, C, H, W], [n, H, W] or rows "
                                       "of an image data set",
                                       output, x.typeString()));
    int64_t cols = int64_t(std::ceil(std::sqrt(double(count))));
    runtime::writeFileAtomic(o.outFile, runtime::imageGridPng(*images, cols, 0.0, 1.0));
    std::cout << fmt::format("wrote {} ({} samples of '{}', {}x{} images, a grid of {} columns)\n", where(o.outFile),
                             count, output, images->dim(2), images->dim(3), cols);
  } else {
    if (x.dtype() != runtime::DType::F32)
      throw runtime::Error("output '" + output + "' is " + x.typeString() + "; samples are f32");
    int64_t d = x.numel() / count;
    std::string csv;
    for (int64_t j = 0; j < d; ++j)
      csv += fmt::format("{}{}{}", j ? "," : "", output, d > 1 ? std::to_string(j) : "");
    csv += "\n";
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t j = 0; j < d; ++j)
        csv += fmt::format("{}{:.6g}", j ? "," : "", x.f32()[i * d + j]);
      csv += "\n";
    }
    runtime::writeFileAtomic(o.outFile, csv);
    std::cout << fmt::format("wrote {} ({} samples of '{}', {} values each)\n", where(o.outFile), count, output, d);
  }
  // Samples of the ring mixture: how many modes they cover, and how well.
  if (m.config.data.kind == frontend::DataSource::Ring && x.rank() == 2 && x.dim(1) == 2) {
    const runtime::Ring &ring = m.config.data.ring;
    runtime::RingScore s = runtime::scoreRing(ring, x);
    std::cout << fmt::format("ring: {} of {} modes captured, {} of {} samples of high quality ({:.1f}%, within 3 "
                             "std = {:g} of a mode)\n",
                             s.modesCaptured, ring.modes, s.highQuality, s.samples,
                             100.0 * double(s.highQuality) / double(s.samples), 3 * ring.stddev);
    if (!o.metricsJson.empty()) {
      nlohmann::json j = {{"samples", s.samples},
                          {"modes", ring.modes},
                          {"modes_captured", s.modesCaptured},
                          {"high_quality", s.highQuality},
                          {"high_quality_fraction", double(s.highQuality) / double(s.samples)},
                          {"per_mode", s.perMode}};
      writeMetrics(o.metricsJson, j);
    }
  }
  return 0;
}

} // namespace nnc::cli
