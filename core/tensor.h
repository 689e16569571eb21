// Tensor: a contiguous, row-major block of one dtype on one device, shared by reference (copying
// a Tensor copies a handle, like torch.Tensor). Views (reshape, slice of the first dimension)
// share storage. Autograd state lives beside the data: requires_grad, the accumulated grad, and
// the node that produced it (grad_fn).
#pragma once

#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "cyclone/core/device.h"
#include "cyclone/core/dtype.h"
#include "cyclone/core/error.h"
#include "cyclone/core/shape.h"
#include "cyclone/core/storage.h"

namespace cyclone {

class Context;  // core/context.h

namespace autograd {
class Node;
}

struct TensorImpl {
  Storage storage;
  size_t offset = 0;  // bytes from storage.data to element 0
  Shape shape;
  DType dtype = DType::kFloat32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
  // In-place changes through this handle (copy_from, zero_, set_data, mark_modified): an autograd
  // node that saved the tensor refuses to run backward after one (autograd.h). Views made by
  // reshape / slice count their own.
  uint64_t version = 0;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (element values set by core; fills with a value live in kernels/fill.h) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::kFloat32,
                      Device device = default_device());
  // On ctx's device, its memory ordered on ctx's stream (see allocate_storage): a kernel's scratch
  // when ctx need not be the thread's current context.
  static Tensor empty(const Shape& shape, DType dtype, const Context& ctx);
  // Page-locked host memory: the source or target of asynchronous GPU copies.
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::kFloat32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::kFloat32,
                      Device device = default_device());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            Device device = default_device()) {
    CYCLONE_CHECK(static_cast<int64_t>(values.size()) == shape.numel(),
                  "from_vector: ", values.size(), " values do not fill shape ", shape);
    return from_host(values.data(), shape, dtype_of<T>, device);
  }
  // Copies shape.numel() elements of dtype from host memory.
  static Tensor from_host(const void* data, const Shape& shape, DType dtype, Device device);

  // ---- properties ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage.device; }
  bool is_pinned() const { return impl().storage.pinned; }
  int rank() const { return shape().rank(); }
  int64_t dim(int i) const { return shape()[i]; }
  int64_t numel() const { return shape().numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  TensorImpl* unsafe_impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // Raw element pointer on the tensor's device (a device pointer for CUDA tensors).
  void* raw_data() const { return static_cast<char*>(impl().storage.data.get()) + impl().offset; }
  template <class T>
  T* data() const {
    CYCLONE_CHECK(dtype() == dtype_of<std::remove_const_t<T>>, "tensor of dtype ",
                  dtype_name(dtype()), " accessed as ",
                  dtype_name(dtype_of<std::remove_const_t<T>>));
    return static_cast<T*>(raw_data());
  }

  // ---- views and copies ----
  // Same storage, new shape; one dimension may be -1 (inferred). Differentiable.
  Tensor reshape(std::initializer_list<int64_t> dims) const {
    return reshape(std::vector<int64_t>(dims));
  }
  Tensor reshape(const std::vector<int64_t>& dims) const;
  Tensor reshape(const Shape& shape) const { return reshape(shape.dims()); }
  Tensor flatten(int start_axis = 1) const;  // [N, C, H, W] -> [N, C*H*W] for start_axis 1
  // Rows [begin, end) of the first dimension, sharing storage. Not tracked by autograd.
  Tensor slice(int64_t begin, int64_t end) const;
  // A copy on `device` (the same tensor if already there). Differentiable.
  Tensor to(Device device) const;
  Tensor pin_memory() const;  // a pinned host copy
  Tensor clone() const;       // a copy on the same device. Differentiable.
  // Copies src into this tensor (same shape and dtype, any pair of devices). Waits for a copy to
  // the host to finish, so the host may read the result at once.
  void copy_from(const Tensor& src) const;
  void zero_() const;  // all bytes zero
  // Makes this tensor share src's storage, shape and dtype while keeping its identity, so every
  // handle to it (a module's member, an optimizer's list) sees the new data: how parameters move
  // between devices and how loaded weights take their place. Drops .grad; only for leaves.
  void set_data(const Tensor& src) const;
  // Records an in-place change made behind the tensor's back (a kernel writing into it, as the
  // optimizers' updates do): see TensorImpl::version.
  void mark_modified() const;
  uint64_t version() const;

  // Host copies of the values (any device).
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out(static_cast<size_t>(numel()));
    (void)data<T>();
    copy_to_host(out.data());
    return out;
  }
  template <class T>
  T item() const {
    CYCLONE_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape());
    return to_vector<T>()[0];
  }
  double item() const;  // any dtype, as double
  // Every read of values to the host (item, to_vector, copy_to_host) goes through here and is
  // counted by host_read_count(): on a GPU each one waits for the device.
  void copy_to_host(void* dst) const;

  // "tensor([[1, 2], [3, 4]], shape=[2, 2], dtype=float32, device=cpu)", long tensors elided.
  std::string str() const;

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as needing a gradient. Returns *this for chaining.
  const Tensor& set_requires_grad(bool on = true) const;
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) const { impl().grad = g.impl_; }
  void zero_grad(bool set_to_none = true) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // A tensor sharing storage with no history and requires_grad false.
  Tensor detach() const;
  // Backpropagates from this one-element tensor (gradient 1) or with an explicit gradient of the
  // same shape; gradients accumulate into the .grad of leaves that require them. The graph's saved
  // tensors are freed unless retain_graph.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

 private:
  TensorImpl& impl() const {
    CYCLONE_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// "a [2, 3] and b [3, 2]": for error messages that name every shape involved.
std::string shapes_str(std::initializer_list<std::pair<const char*, const Tensor*>> tensors);

// Throws when t is not on `device` / of `dtype` / of `shape`, naming the op and the argument.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// Throws unless t is float32 or float64: "<op>: <what> needs float32 or float64, got int32".
void check_float(const char* op, const Tensor& t, const char* what = nullptr);
// The same for kernels that also store bfloat16 (computing in float32).
void check_floating(const char* op, const Tensor& t, const char* what = nullptr);

// Reads of tensor values to the host since the process started (all devices, all threads): what a
// test counts to show that a loop does not wait for the device every step.
int64_t host_read_count();

}  // namespace cyclone
