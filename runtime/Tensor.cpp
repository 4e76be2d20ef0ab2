// Aligned tensor storage.
#include "runtime/Tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace nnc::runtime {

void Tensor::Free::operator()(void *p) const { std::free(p); }

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  int64_t n = 1;
  for (int64_t d : shape_) {
    if (d < 0 || (d != 0 && n > std::numeric_limits<int64_t>::max() / d))
      throw Error("tensor shape " + typeString() + " is too large");
    n *= d;
  }
  numel_ = n;
  size_t bytes = size_t(n) * dtypeSize(dtype_);
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0)
    rounded = kAlign;
  void *p = std::aligned_alloc(kAlign, rounded);
  if (!p)
    throw Error("out of memory allocating " + std::to_string(bytes) + " bytes for " + typeString());
  std::memset(p, 0, rounded);
  data_.reset(p);
}

Tensor::Tensor(const Tensor &other) : Tensor(other.dtype_, other.shape_) {
  if (other.bytes())
    std::memcpy(data(), other.data(), other.bytes());
}

Tensor &Tensor::operator=(const Tensor &other) {
  if (this != &other) {
    Tensor copy(other);
    *this = std::move(copy);
  }
  return *this;
}

std::string Tensor::typeString() const {
  std::string s = dtypeName(dtype_);
  s += "[";
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape_[i]);
  }
  return s + "]";
}

} // namespace nnc::runtime
