// Host tensors for the runtime: 64-byte aligned storage, a dtype and a shape.
// Compiled code reads and writes these buffers directly, so the layout is
// plain row-major with no strides or offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace nnc::runtime {

/// A user-facing runtime failure (bad data file, corrupt checkpoint, ...).
/// The message is complete and printed as `nnc: error: <what()>`.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class DType : uint8_t { F32, I64 };

inline size_t dtypeSize(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char *dtypeName(DType t) { return t == DType::F32 ? "f32" : "i64"; }

/// Owns an aligned, zero-initialized buffer. Copyable (deep copy) and movable.
class Tensor {
public:
  static constexpr size_t kAlign = 64;

  Tensor() = default;
  Tensor(DType dtype, std::vector<int64_t> shape);
  Tensor(const Tensor &other);
  Tensor &operator=(const Tensor &other);
  Tensor(Tensor &&) noexcept = default;
  Tensor &operator=(Tensor &&) noexcept = default;

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t bytes() const { return size_t(numel_) * dtypeSize(dtype_); }

  void *data() { return data_.get(); }
  const void *data() const { return data_.get(); }
  float *f32() { return static_cast<float *>(data()); }
  const float *f32() const { return static_cast<const float *>(data()); }
  int64_t *i64() { return static_cast<int64_t *>(data()); }
  const int64_t *i64() const { return static_cast<const int64_t *>(data()); }

  /// "f32[2, 3]"
  std::string typeString() const;

private:
  struct Free {
    void operator()(void *p) const;
  };
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  std::unique_ptr<void, Free> data_;
};

} // namespace nnc::runtime
