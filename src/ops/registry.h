// The op registry: one entry per op lists its shape cases, its reference (the spec,
// in double) and its fast forms (f32). tests/ops/test_op_registry.cpp turns every
// entry into the DESIGN.md checks: (1) reference backward vs central finite
// differences, (2) fast forward vs reference, (3) fast backward vs reference
// backward for every input gradient, (6) poisoned memory, (7) extreme inputs
// (cases flagged `extreme`). bench/ iterates the same entries.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "speedlm/tensor.h"

namespace speedlm::ops {

// A reference-side tensor: double values, same shape as the f32/i32 tensor it mirrors.
struct DBuf {
  Shape shape;
  std::vector<double> v;
  DBuf() = default;
  explicit DBuf(Shape s) : shape(std::move(s)), v(static_cast<size_t>(shape_numel(shape)), 0.0) {}
  size_t size() const { return v.size(); }
  double& operator[](size_t i) { return v[i]; }
  double operator[](size_t i) const { return v[i]; }
};

// How the harness fills one input.
struct InputSpec {
  std::string name;
  Shape shape;
  enum class Kind { Normal, Uniform, Index } kind = Kind::Normal;
  double a = 0.0, b = 1.0;      // Normal: mean a, std b. Uniform: [a, b). Index: [0, b) as integers.
  bool differentiable = true;   // Index inputs never are.
  double ignore_fraction = 0.0;  // Index only: this fraction of entries becomes `ignore_value`.
  int ignore_value = -100;
};

using Tensors = std::vector<Tensor>;
using DBufs = std::vector<DBuf>;

struct OpForm {
  std::string name;  // "fast", "chunk", "flash", ...
  std::function<Tensors(const Tensors& inputs)> fwd;
  // d_outputs has one tensor per output; returns one gradient per input (undefined for non-differentiable).
  std::function<Tensors(const Tensors& inputs, const Tensors& d_outputs)> bwd;
};

struct OpCase {
  std::string label;  // e.g. "N=65 D=17"
  std::vector<InputSpec> inputs;
  bool extreme = false;  // check 7: inputs chosen to stress numerics
  std::function<DBufs(const DBufs& inputs)> ref_fwd;
  std::function<DBufs(const DBufs& inputs, const DBufs& d_outputs)> ref_bwd;
  std::vector<OpForm> forms;
};

struct OpEntry {
  std::string name;
  std::function<std::vector<OpCase>()> cases;
  double fwd_tol = 1e-5;  // RMS-relative error, fast (f32) vs reference (double)
  double bwd_tol = 1e-4;
  double fd_tol = 1e-6;   // reference backward vs finite differences (relative)
  double fd_eps = 1e-6;   // finite-difference step, scaled by max(1, |x|)
};

const std::vector<OpEntry>& registry();
const OpEntry* find_op(const std::string& name);

// Conversions the harness and the entries share.
DBuf to_dbuf(const Tensor& t);
Tensor to_tensor_f32(const DBuf& d);
Tensor to_tensor_i32(const DBuf& d);
// An Index input's values as i32, for calling reference kernels.
std::vector<int32_t> to_i32_values(const DBuf& d);
// RMS-relative error ||a - b|| / (||b|| + 1e-12), b being the reference.
double rms_rel_error(const Tensor& a, const DBuf& b);

}  // namespace speedlm::ops
