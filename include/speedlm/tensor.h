// Tensor: dtype, shape and contiguous row-major storage, 64-byte aligned.
// Compute is f32; bf16 and i32 are storage types. Copies share storage (like a
// handle); clone() makes a deep copy. Views from reshape() share storage too.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "speedlm/status.h"

namespace speedlm {

enum class DType : uint8_t { F32, BF16, I32 };

const char* dtype_name(DType t);
size_t dtype_size(DType t);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, DType dtype = DType::F32);
  static Tensor zeros(Shape shape, DType dtype = DType::F32);
  static Tensor full(Shape shape, float value);
  static Tensor from(Shape shape, const std::vector<float>& values);
  static Tensor from_i32(Shape shape, const std::vector<int32_t>& values);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + ndim() : i]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  template <typename T>
  T* data() const {
    return reinterpret_cast<T*>(static_cast<char*>(storage_.get()) + offset_bytes_);
  }
  float* f32() const;
  int32_t* i32() const;
  uint16_t* bf16() const;

  // A view with a new shape over the same storage (numel must match).
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) of the leading dimension, sharing storage.
  Tensor slice0(int64_t begin, int64_t end) const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  void fill(float value);
  void zero();
  void copy_from(const Tensor& src);
  bool same_shape(const Tensor& o) const { return shape_ == o.shape_; }
  bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }

 private:
  std::shared_ptr<void> storage_;
  size_t offset_bytes_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

// Testing hook (DESIGN.md check 6): while on, every new f32 tensor starts filled with
// NaN, so a kernel that reads memory it never wrote shows NaN in its outputs.
void set_poison_allocations(bool on);

// bf16 <-> f32 (round to nearest even; NaN stays NaN; f32 subnormals become signed zero).
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t x);
// y[i] = f32_to_bf16(x[i]) for n elements, vectorised (VCVTNE2PS2BF16) and threaded.
void convert_to_bf16(const float* x, int64_t n, uint16_t* y);
// The same on the calling thread only: for kernels that emit bf16 from their own threads.
void convert_to_bf16_serial(const float* x, int64_t n, uint16_t* y);

}  // namespace speedlm
