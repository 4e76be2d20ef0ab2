// Training logs and their SVG curves. The reader keeps the file's column
// order; the plot is plain SVG text (no fonts or images embedded), laid out in
// pixels on a fixed 900-wide canvas.
#include "runtime/Plot.h"

#include "runtime/FileUtil.h"
#include "runtime/Tensor.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <utility>

namespace nnc::runtime {

int TrainingLog::column(const std::string &name) const {
  auto it = std::find(columns.begin(), columns.end(), name);
  return it == columns.end() ? -1 : int(it - columns.begin());
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void fail(const std::string &path, size_t line, const std::string &problem) {
  throw Error(fmt::format("{}:{}: {}", path, line, problem));
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::vector<std::string> splitLines(const std::string &text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

/// Every row is placed at its epoch, so it must have a finite one.
void checkEpoch(const std::string &path, size_t line, const TrainingLog &log, const std::vector<double> &row) {
  if (!std::isfinite(row[size_t(log.column("epoch"))]))
    fail(path, line, "the 'epoch' value is missing or not a finite number");
}

TrainingLog readCsv(const std::string &path, const std::vector<std::string> &lines) {
  TrainingLog log;
  bool haveHeader = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty())
      continue;
    std::vector<std::string> fields;
    for (size_t start = 0;;) {
      size_t comma = lines[i].find(',', start);
      fields.push_back(trim(lines[i].substr(start, comma - start)));
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    if (!haveHeader) {
      for (const std::string &name : fields) {
        if (name.empty() || log.column(name) >= 0)
          fail(path, i + 1,
               fmt::format("{} column name '{}' in the header", name.empty() ? "empty" : "duplicate", name));
        log.columns.push_back(name);
      }
      if (log.column("epoch") < 0)
        fail(path, i + 1, "no 'epoch' column in the header");
      haveHeader = true;
      continue;
    }
    if (fields.size() != log.columns.size())
      fail(path, i + 1, fmt::format("expected {} fields, found {}", log.columns.size(), fields.size()));
    std::vector<double> &row = log.rows.emplace_back();
    for (size_t c = 0; c < fields.size(); ++c) {
      char *end = nullptr;
      double v = std::strtod(fields[c].c_str(), &end);
      if (fields[c].empty())
        v = kNaN;
      else if (*end != '\0')
        fail(path, i + 1, fmt::format("'{}' in column '{}' is not a number", fields[c], log.columns[c]));
      row.push_back(v);
    }
    checkEpoch(path, i + 1, log, row);
  }
  return log;
}

TrainingLog readJsonLines(const std::string &path, const std::vector<std::string> &lines) {
  TrainingLog log;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty())
      continue;
    nlohmann::ordered_json object;
    try {
      object = nlohmann::ordered_json::parse(lines[i]);
    } catch (const nlohmann::json::exception &e) {
      // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
      std::string what = e.what();
      fail(path, i + 1, "invalid JSON: " + what.substr(what.find(']') + 2));
    }
    if (!object.is_object())
      fail(path, i + 1, "expected a JSON object");
    if (!object.contains("epoch"))
      fail(path, i + 1, "no 'epoch' key");
    std::vector<double> &row = log.rows.emplace_back(log.columns.size(), kNaN);
    for (const auto &item : object.items()) {
      int c = log.column(item.key());
      if (c < 0) {
        c = int(log.columns.size());
        log.columns.push_back(item.key());
        row.push_back(kNaN);
      }
      if (item.value().is_number())
        row[size_t(c)] = item.value().get<double>();
      else if (!item.value().is_null())
        fail(path, i + 1, fmt::format("'{}' is not a number", item.key()));
    }
    checkEpoch(path, i + 1, log, row);
  }
  // Keys that first appear in later lines are absent from earlier rows.
  for (std::vector<double> &row : log.rows)
    row.resize(log.columns.size(), kNaN);
  return log;
}

} // namespace

TrainingLog readTrainingLog(const std::string &path) {
  std::string text = readFile(path);
  std::vector<std::string> lines = splitLines(text);
  size_t first = text.find_first_not_of(" \t\r\n");
  bool json = first != std::string::npos && text[first] == '{';
  TrainingLog log = json ? readJsonLines(path, lines) : readCsv(path, lines);
  if (log.rows.empty())
    fail(path, std::max<size_t>(lines.size(), 1), "no rows");
  return log;
}

namespace {

// Canvas geometry in pixels. Panels are stacked; each has its title above the
// plot area and its tick labels and x title below.
constexpr double kWidth = 900, kLeft = 84, kRight = 24;
constexpr double kPanelHeight = 290, kPlotTop = 34, kPlotBottom = 234;
const char *const kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";

/// A linear axis: the interval [lo, hi] it shows and its tick values.
struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  int decimals = 0; // of the tick labels
};

/// The smallest 1/2/5 x 10^k step that splits `span` into at most `maxTicks` intervals.
double niceStep(double span, int maxTicks) {
  double raw = span / maxTicks;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * magnitude >= raw * (1 - 1e-9))
      return m * magnitude;
  return 10 * magnitude;
}

void setTicks(Axis &a, double step) {
  // At most a few dozen ticks, also for spans too wide for k to advance.
  double first = std::ceil(a.lo / step - 1e-9);
  for (int i = 0; i < 50 && std::isfinite(step) && (first + i) * step <= a.hi + step * 1e-9; ++i)
    a.ticks.push_back(first + i == 0 ? 0.0 : (first + i) * step);
  double digits = std::isfinite(step) && step > 0 ? -std::floor(std::log10(step) + 1e-9) : 0;
  a.decimals = int(std::clamp(digits, 0.0, 12.0));
}

/// A value axis from a nice lower bound to a nice upper bound around [min, max].
Axis valueAxis(double min, double max) {
  if (!(min <= max) || !std::isfinite(max - min)) { // no finite value at all, or a span beyond double
    min = 0;
    max = 1;
  }
  if (max - min <= 1e-12 * std::max(1.0, std::abs(max))) { // constant: show it mid-panel
    double pad = min == 0 ? 1 : std::abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  // A 2% margin keeps markers at the extremes off the frame, but never makes
  // a non-negative quantity (a loss, a learning rate) look like it could dip below 0.
  double margin = 0.02 * (max - min);
  min = min >= 0 ? std::max(0.0, min - margin) : min - margin;
  max = max <= 0 ? std::min(0.0, max + margin) : max + margin;
  double step = niceStep(max - min, 6);
  Axis a;
  a.lo = std::floor(min / step + 1e-9) * step;
  a.hi = std::ceil(max / step - 1e-9) * step;
  setTicks(a, step);
  return a;
}

/// The epoch axis: the data range with a margin, integer ticks inside it.
Axis epochAxis(double min, double max) {
  Axis a;
  double pad = std::max(0.5, 0.03 * (max - min));
  a.lo = min - pad;
  a.hi = max + pad;
  setTicks(a, std::max(1.0, niceStep(a.hi - a.lo, 12)));
  return a;
}

struct Series {
  std::string column, label, color;
  std::vector<double> xs, ys; // ys may hold non-finite values: gaps
};

struct Panel {
  std::string title, yTitle;
  std::vector<Series> series;
};

std::string escapeXml(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

std::string tickLabel(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", v, decimals);
  return s == "-0" || s.find_first_not_of("-0.") == std::string::npos ? "0" : s;
}

template <typename... Args> void emit(std::string &out, fmt::format_string<Args...> format, Args &&...args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

/// Appends panel `p` with its top edge at `top`.
void drawPanel(std::string &out, const Panel &p, const Axis &x, double top) {
  double minY = INFINITY, maxY = -INFINITY;
  for (const Series &s : p.series)
    for (double y : s.ys)
      if (std::isfinite(y)) {
        minY = std::min(minY, y);
        maxY = std::max(maxY, y);
      }
  Axis y = valueAxis(minY, maxY);
  double x0 = kLeft, x1 = kWidth - kRight, y0 = top + kPlotBottom, y1 = top + kPlotTop;
  auto px = [&](double v) { return x0 + (v - x.lo) / (x.hi - x.lo) * (x1 - x0); };
  auto py = [&](double v) { return y0 - (v - y.lo) / (y.hi - y.lo) * (y0 - y1); };

  emit(out, "<g>\n<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n", (x0 + x1) / 2,
       top + 22, escapeXml(p.title));
  // Grid, tick marks and labels, then the frame over the grid.
  std::string grid, marks;
  for (double t : x.ticks) {
    grid += fmt::format("M{:.1f} {:.1f}V{:.1f}", px(t), y0, y1);
    marks += fmt::format("M{:.1f} {:.1f}v5", px(t), y0);
    emit(out, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(t), y0 + 19, tickLabel(t, 0));
  }
  for (double t : y.ticks) {
    grid += fmt::format("M{:.1f} {:.1f}H{:.1f}", x0, py(t), x1);
    marks += fmt::format("M{:.1f} {:.1f}h-5", x0, py(t));
    emit(out, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", x0 - 8, py(t) + 4,
         tickLabel(t, y.decimals));
  }
  emit(out, "<path d=\"{}\" stroke=\"#e4e4e4\" fill=\"none\"/>\n<path d=\"{}\" stroke=\"#333\" fill=\"none\"/>\n", grid,
       marks);
  emit(out, "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#333\"/>\n", x0,
       y1, x1 - x0, y0 - y1);
  emit(out, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\">epoch</text>\n", (x0 + x1) / 2,
       y0 + 40);
  emit(out,
       "<text transform=\"translate({:.1f} {:.1f}) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n",
       x0 - 62, (y0 + y1) / 2, escapeXml(p.yTitle));

  // Each series: one path (a new subpath after every gap), then its markers.
  // Long runs only mark points with no finite neighbour, which no line shows.
  std::vector<std::pair<double, double>> drawn; // pixel points, for the legend placement
  for (const Series &s : p.series) {
    std::string d, dots;
    size_t n = s.ys.size();
    auto finite = [&](size_t i) { return i < n && std::isfinite(s.xs[i]) && std::isfinite(s.ys[i]); };
    for (size_t i = 0; i < n; ++i) {
      if (!finite(i))
        continue;
      double cx = px(s.xs[i]), cy = py(s.ys[i]);
      d += fmt::format("{}{:.1f} {:.1f}", i > 0 && finite(i - 1) ? "L" : "M", cx, cy);
      if (n <= 60 || !((i > 0 && finite(i - 1)) || finite(i + 1)))
        dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.2\"/>", cx, cy);
      if (i > 0 && finite(i - 1)) // sample the segment from the previous point
        for (double f = 0.25, ax = px(s.xs[i - 1]), ay = py(s.ys[i - 1]); f < 1; f += 0.25)
          drawn.emplace_back(ax + (cx - ax) * f, ay + (cy - ay) * f);
      drawn.emplace_back(cx, cy);
    }
    emit(out,
         "<path class=\"series\" data-series=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
         "stroke-linejoin=\"round\"/>\n<g fill=\"{}\">{}</g>\n",
         escapeXml(s.column), d, s.color, s.color, dots);
  }

  // Legend in the corner its box covers the fewest drawn points in (matplotlib's "best").
  if (p.series.empty()) {
    out += "</g>\n";
    return;
  }
  double w = 0, h = 8 + 20.0 * double(p.series.size());
  for (const Series &s : p.series)
    w = std::max(w, 48 + 7.5 * double(s.label.size()));
  double bestX = 0, bestY = 0;
  size_t bestCount = SIZE_MAX;
  for (auto corner : {std::pair(x1 - w - 10, y1 + 10), std::pair(x1 - w - 10, y0 - h - 10), std::pair(x0 + 10, y1 + 10),
                      std::pair(x0 + 10, y0 - h - 10)}) {
    double lx = corner.first, ly = corner.second; // plain locals: C++17 lambdas cannot capture bindings
    size_t count = size_t(std::count_if(drawn.begin(), drawn.end(), [&](auto q) {
      return q.first > lx - 6 && q.first < lx + w + 6 && q.second > ly - 6 && q.second < ly + h + 6;
    }));
    if (count < bestCount) {
      bestCount = count;
      bestX = lx;
      bestY = ly;
    }
  }
  emit(out,
       "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" rx=\"3\" fill=\"white\" "
       "fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n",
       bestX, bestY, w, h);
  for (size_t i = 0; i < p.series.size(); ++i) {
    double ly = bestY + 14 + 20.0 * double(i);
    const std::string &c = p.series[i].color;
    emit(out,
         "<path d=\"M{:.1f} {:.1f}h26\" stroke=\"{}\" stroke-width=\"2\"/><circle cx=\"{:.1f}\" cy=\"{:.1f}\" "
         "r=\"3.2\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
         bestX + 8, ly, c, bestX + 21, ly, c, bestX + 40, ly + 4, escapeXml(p.series[i].label));
  }
  emit(out, "</g>\n");
}

} // namespace

std::string plotSvg(const TrainingLog &log, const std::string &title) {
  int epochColumn = log.column("epoch");
  std::vector<double> xs;
  double minX = INFINITY, maxX = -INFINITY;
  for (size_t r = 0; r < log.rows.size(); ++r) {
    xs.push_back(epochColumn >= 0 ? log.rows[r][size_t(epochColumn)] : double(r + 1));
    if (std::isfinite(xs.back())) {
      minX = std::min(minX, xs.back());
      maxX = std::max(maxX, xs.back());
    }
  }
  if (!(minX <= maxX))
    minX = maxX = 1;
  Axis x = epochAxis(minX, maxX);

  // A series is drawn when its column has a finite value.
  auto add = [&](Panel &p, const std::string &column, const std::string &label, const char *color) {
    int c = log.column(column);
    if (c < 0)
      return;
    Series s{column, label, color, xs, {}};
    for (const std::vector<double> &row : log.rows)
      s.ys.push_back(row[size_t(c)]);
    if (std::any_of(s.ys.begin(), s.ys.end(), [](double v) { return std::isfinite(v); }))
      p.series.push_back(std::move(s));
  };
  const char *train = "#1f77b4", *val = "#ff7f0e";
  std::vector<Panel> panels(1, Panel{"loss", "loss", {}});
  add(panels[0], "train_loss", "train", train);
  add(panels[0], "val_loss", "val", val);
  // A model with several losses logs train_<name> and val_<name> for each:
  // one panel per loss, train and val in it.
  for (const std::string &c : log.columns) {
    if (c.rfind("train_", 0) != 0 || c == "train_loss" || c == "train_accuracy")
      continue;
    std::string name = c.substr(6);
    Panel p{"loss " + name, "loss " + name, {}};
    add(p, c, "train", train);
    add(p, "val_" + name, "val", val);
    if (!p.series.empty())
      panels.push_back(std::move(p));
  }
  if (panels.size() > 1 && panels[0].series.empty())
    panels.erase(panels.begin());
  Panel accuracy{"accuracy", "accuracy", {}};
  add(accuracy, "train_accuracy", "train", train);
  add(accuracy, "val_accuracy", "val", val);
  if (!accuracy.series.empty())
    panels.push_back(std::move(accuracy));
  Panel lr{"learning rate", "learning rate", {}};
  add(lr, "lr", "lr", "#2ca02c");
  if (!lr.series.empty()) {
    double lo = INFINITY, hi = -INFINITY;
    for (double v : lr.series[0].ys)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    if (lo < hi)
      panels.push_back(std::move(lr));
  }

  double head = title.empty() ? 8 : 44;
  double height = head + kPanelHeight * double(panels.size());
  std::string out = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
                                "viewBox=\"0 0 {0:.0f} {1:.0f}\" font-family=\"{2}\" font-size=\"12\" fill=\"#222\">\n"
                                "<rect width=\"{0:.0f}\" height=\"{1:.0f}\" fill=\"white\"/>\n",
                                kWidth, height, kFont);
  if (!title.empty())
    out += fmt::format("<text x=\"{:.1f}\" y=\"30\" text-anchor=\"middle\" font-size=\"18\" "
                       "font-weight=\"bold\">{}</text>\n",
                       kWidth / 2, escapeXml(title));
  for (size_t i = 0; i < panels.size(); ++i)
    drawPanel(out, panels[i], x, head + kPanelHeight * double(i));
  return out + "</svg>\n";
}

std::string formatTrainingLog(const TrainingLog &log, bool jsonLines) {
  std::string out;
  if (!jsonLines) {
    for (size_t c = 0; c < log.columns.size(); ++c)
      out += (c ? "," : "") + log.columns[c];
    out += "\n";
  }
  for (const std::vector<double> &row : log.rows) {
    if (jsonLines) {
      nlohmann::json j = nlohmann::json::object();
      for (size_t c = 0; c < log.columns.size(); ++c)
        j[log.columns[c]] = std::isfinite(row[c]) ? nlohmann::json(row[c]) : nlohmann::json(nullptr);
      out += j.dump() + "\n";
      continue;
    }
    for (size_t c = 0; c < log.columns.size(); ++c)
      out += (c ? "," : "") + (std::isfinite(row[c]) ? fmt::format("{:.9g}", row[c]) : std::string());
    out += "\n";
  }
  return out;
}

} // namespace nnc::runtime
