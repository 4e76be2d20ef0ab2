#include "frontend/ParamSelect.h"

#include "support/Diagnostics.h"

#include <algorithm>

namespace nnc::frontend {

bool isParamSetName(const std::string &name) {
  return name == "params" || name == "weights" || name == "biases" || name == "norms";
}

std::vector<std::string> selectParams(const std::vector<ParamInfo> &params, const std::string &selector, bool setName) {
  std::vector<std::string> r;
  for (const ParamInfo &p : params) {
    bool pick = setName ? selector == "params" || (selector == "weights" && !p.isBias) ||
                              (selector == "biases" && p.isBias) || (selector == "norms" && p.isNorm)
                        : p.name == selector || p.name.rfind(selector + ".", 0) == 0;
    if (pick)
      r.push_back(p.name);
  }
  return r;
}

std::string paramSuggestion(const std::vector<ParamInfo> &params, const std::string &selector) {
  std::vector<std::string> names; // parameters and their layer instances
  for (const ParamInfo &p : params) {
    names.push_back(p.name);
    if (size_t dot = p.name.rfind('.');
        dot != std::string::npos && std::find(names.begin(), names.end(), p.name.substr(0, dot)) == names.end())
      names.push_back(p.name.substr(0, dot));
  }
  std::string m = closestMatch(selector, names);
  return m.empty() ? "" : "; did you mean \"" + m + "\"?";
}

} // namespace nnc::frontend
