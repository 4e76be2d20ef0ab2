// CSV data: a header row, columns chosen per tensor, f32 and i64 values.
#include "runtime/Csv.h"

#include "support/Diagnostics.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

namespace nnc::runtime {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::string_view unquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"')
    s = trim(s.substr(1, s.size() - 2));
  return s;
}

/// Parses a whole field as a finite number (an optional '+', and surrounding
/// double quotes, are allowed).
bool parseNumber(std::string_view s, double &out) {
  s = unquote(s);
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  if (s.empty())
    return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

void splitFields(std::string_view line, std::vector<std::string_view> &fields) {
  fields.clear();
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(trim(line.substr(start)));
      return;
    }
    fields.push_back(trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

bool isBlank(std::string_view line) { return trim(line).empty(); }

/// Walks the lines of a text, numbering them from 1; skips blank ones.
class Lines {
public:
  explicit Lines(const std::string &text) : text_(text) {
    // A UTF-8 byte-order mark is not part of the first field.
    if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0)
      pos_ = 3;
  }
  bool next(std::string_view &line) {
    while (pos_ < text_.size()) {
      size_t eol = text_.find('\n', pos_);
      if (eol == std::string::npos)
        eol = text_.size();
      line = std::string_view(text_.data() + pos_, eol - pos_);
      pos_ = eol + 1;
      ++lineNo_;
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      if (!isBlank(line))
        return true;
    }
    return false;
  }
  int64_t lineNo() const { return lineNo_; }

private:
  const std::string &text_;
  size_t pos_ = 0;
  int64_t lineNo_ = 0;
};

/// Labels and ids this large would only come from a wrong column, and would
/// make one-hot targets absurdly wide; they are also where f32 stops being exact.
constexpr double kMaxInteger = double(1 << 24);

} // namespace

CsvHead csvHead(const std::string &path) {
  // Only the start of the file is read: larger and larger prefixes until
  // one holds a whole non-blank row (or the file ends).
  std::string_view line;
  std::string text;
  for (size_t want = size_t(1) << 16;; want *= 4) {
    text = readGzipOrRawPrefix(path, want);
    Lines lines(text);
    bool found = lines.next(line);
    bool whole = found && line.data() + line.size() < text.data() + text.size();
    if (whole || text.size() < want)
      break;
  }
  CsvHead head;
  Lines lines(text);
  if (!lines.next(line))
    return head;
  std::vector<std::string_view> fields;
  splitFields(line, fields);
  head.columns = int64_t(fields.size());
  bool numeric = true;
  double ignored;
  for (std::string_view f : fields)
    numeric = numeric && parseNumber(f, ignored);
  if (!numeric)
    for (std::string_view f : fields)
      head.names.emplace_back(unquote(f));
  return head;
}

Dataset loadCSVColumns(const std::string &path, const std::vector<ColumnSelection> &inputs,
                       const ColumnSelection *label, bool header) {
  std::string text = readGzipOrRaw(path);
  Lines lines(text);
  std::string_view line;
  std::vector<std::string_view> fields;
  if (!lines.next(line))
    throw Error(fmt::format("{}:1: empty file", path));
  auto where = [&] { return fmt::format("{}:{}: ", path, lines.lineNo()); };
  splitFields(line, fields);
  const int64_t expected = int64_t(fields.size());
  bool numeric = true;
  double ignored;
  for (std::string_view f : fields)
    numeric = numeric && parseNumber(f, ignored);
  bool isHeader = header || !numeric;
  std::vector<std::string> names;
  if (isHeader)
    for (std::string_view f : fields)
      names.emplace_back(unquote(f));

  // Which columns each tensor takes.
  std::vector<const ColumnSelection *> sels;
  for (const ColumnSelection &s : inputs)
    sels.push_back(&s);
  if (label)
    sels.push_back(label);
  std::vector<std::vector<int64_t>> cols(sels.size());
  std::vector<int64_t> owner(size_t(expected), -1);
  auto describe = [&](int64_t c) {
    return isHeader ? fmt::format("column {} ('{}')", c + 1, names[size_t(c)]) : fmt::format("column {}", c + 1);
  };
  for (size_t s = 0; s < sels.size(); ++s) {
    for (const ColumnRef &r : sels[s]->columns) {
      int64_t c = r.index;
      if (!r.name.empty()) {
        if (!isHeader)
          throw Error(where() + fmt::format("the file has no header row, so column '{}' (for {}) cannot be found; "
                                            "name columns by number (0 is the first) or add a header",
                                            r.name, sels[s]->tensor));
        auto it = std::find(names.begin(), names.end(), r.name);
        if (it == names.end()) {
          std::string m = closestMatch(r.name, names);
          throw Error(where() + fmt::format("no column is named '{}' (for {}){}", r.name, sels[s]->tensor,
                                            m.empty() ? "" : "; did you mean '" + m + "'?"));
        }
        c = int64_t(it - names.begin());
      } else if (c < 0) {
        c += expected;
      }
      if (c < 0 || c >= expected)
        throw Error(where() + fmt::format("{} column {} is out of range: rows have {} fields", sels[s]->tensor, r.index,
                                          expected));
      if (owner[size_t(c)] >= 0)
        throw Error(where() + fmt::format("{} feeds both {} and {}", describe(c),
                                          sels[size_t(owner[size_t(c)])]->tensor, sels[s]->tensor));
      owner[size_t(c)] = int64_t(s);
      cols[s].push_back(c);
    }
  }
  for (size_t s = 0; s < sels.size(); ++s) {
    if (!sels[s]->rest)
      continue;
    for (int64_t c = 0; c < expected; ++c)
      if (owner[size_t(c)] < 0) {
        owner[size_t(c)] = int64_t(s);
        cols[s].push_back(c);
      }
    if (cols[s].empty())
      throw Error(where() + (label && sels.size() == 2 && expected == 1
                                 ? std::string("need at least 2 columns (features and a label), found 1")
                                 : fmt::format("rows have {} field{} and none is left for {}", expected,
                                               expected == 1 ? "" : "s", sels[s]->tensor)));
  }
  std::vector<std::vector<int64_t>> shapes(sels.size());
  for (size_t s = 0; s < sels.size(); ++s) {
    shapes[s] = sels[s]->rowShape;
    if (shapes[s].empty() && !(sels[s]->classes && cols[s].size() == 1)) {
      shapes[s] = {int64_t(cols[s].size())};
      continue;
    }
    int64_t want = 1;
    for (int64_t d : shapes[s])
      want *= d;
    if (want != int64_t(cols[s].size())) {
      std::string list;
      for (size_t k = 0; k < cols[s].size() && k < 6; ++k)
        list += (k ? ", " : "") + (isHeader ? "'" + names[size_t(cols[s][k])] + "'" : std::to_string(cols[s][k]));
      if (cols[s].size() > 6)
        list += ", ...";
      throw Error(where() + fmt::format("{} takes {} value{} per example, but {} column{} feed{} it ({})",
                                        sels[s]->tensor, want, want == 1 ? "" : "s", cols[s].size(),
                                        cols[s].size() == 1 ? "" : "s", cols[s].size() == 1 ? "s" : "", list));
    }
  }

  // The rows.
  std::vector<std::vector<float>> f32(sels.size());
  std::vector<std::vector<int64_t>> i64(sels.size());
  int64_t rows = 0, lastLine = lines.lineNo();
  bool first = !isHeader;
  while (first || lines.next(line)) {
    if (!first)
      splitFields(line, fields);
    first = false;
    lastLine = lines.lineNo();
    if (int64_t(fields.size()) != expected)
      throw Error(where() + fmt::format("row has {} fields, expected {}", fields.size(), expected));
    for (size_t s = 0; s < sels.size(); ++s) {
      const ColumnSelection &sel = *sels[s];
      for (int64_t c : cols[s]) {
        std::string_view f = fields[size_t(c)];
        double v;
        bool ok = parseNumber(f, v);
        if (sel.classes) {
          if (!ok || v < 0 || v != std::floor(v))
            throw Error(where() + fmt::format("label \"{}\" in column {} is not a non-negative integer", f, c + 1));
          if (v >= kMaxInteger)
            throw Error(where() +
                        fmt::format("label {} in column {} is too large (limit {})", f, c + 1, int64_t(kMaxInteger)));
          i64[s].push_back(int64_t(v));
          continue;
        }
        if (!ok)
          throw Error(where() + (f.empty() ? fmt::format("field {} is empty", c + 1)
                                           : fmt::format("field {} is not a number: \"{}\"", c + 1, f)));
        if (sel.dtype == DType::I64) {
          if (v != std::floor(v) || std::fabs(v) >= kMaxInteger)
            throw Error(where() + fmt::format("{} is \"{}\"; {} takes integers (ids) of magnitude below {}",
                                              describe(c), f, sel.tensor, int64_t(kMaxInteger)));
          i64[s].push_back(int64_t(v));
          continue;
        }
        if (std::fabs(v) > double(std::numeric_limits<float>::max()))
          throw Error(where() + fmt::format("field {} is \"{}\", beyond the range of f32", c + 1, f));
        f32[s].push_back(float(v));
      }
    }
    rows += 1;
  }
  if (rows == 0)
    throw Error(fmt::format("{}:{}: no data rows after the header", path, lastLine));

  auto tensor = [&](size_t s) {
    std::vector<int64_t> shape = shapes[s];
    shape.insert(shape.begin(), rows);
    bool ints = sels[s]->classes || sels[s]->dtype == DType::I64;
    Tensor t(ints ? DType::I64 : DType::F32, shape);
    if (ints)
      std::copy(i64[s].begin(), i64[s].end(), t.i64());
    else
      std::copy(f32[s].begin(), f32[s].end(), t.f32());
    return t;
  };
  Dataset d;
  d.inputs.clear();
  for (size_t s = 0; s < inputs.size(); ++s)
    d.inputs.push_back(tensor(s));
  if (!label) {
    d.y = Tensor(DType::I64, {rows});
    std::fill_n(d.y.i64(), rows, 0);
    return d;
  }
  d.y = tensor(sels.size() - 1);
  if (label->classes)
    d.numClasses = *std::max_element(i64.back().begin(), i64.back().end()) + 1;
  return d;
}

Dataset loadCSV(const std::string &path, int64_t labelColumn, bool header) {
  std::vector<ColumnSelection> in(1);
  in[0].tensor = "the features";
  in[0].rest = true;
  if (labelColumn == kNoLabelColumn)
    return loadCSVColumns(path, in, nullptr, header);
  if (labelColumn < -1)
    throw Error(fmt::format("{}:1: label column {} is out of range", path, labelColumn));
  ColumnSelection label;
  label.tensor = "label";
  label.dtype = DType::I64;
  label.classes = true;
  label.columns.push_back({"", labelColumn});
  return loadCSVColumns(path, in, &label, header);
}

} // namespace nnc::runtime
