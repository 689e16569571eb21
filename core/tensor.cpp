#include "cyclone/core/tensor.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone {

namespace {

std::shared_ptr<TensorImpl> make_impl(Storage storage, size_t offset, Shape shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->dtype = dtype;
  return impl;
}

// Copies nbytes between any two places. Device memory is reached through the CUDA stream of the
// device involved; a copy that lands on the host is waited for, so the host can read it.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  // Device-to-device across two GPUs is ordered on the source's stream after waiting for the
  // destination's prior work (cudaMemcpyDefault picks the peer path).
  const Device ordering = src_dev.is_cuda() ? src_dev : dst_dev;
  Context& ctx = Context::current(ordering);
  if (dst_dev.is_cuda() && src_dev.is_cuda() && !(dst_dev == src_dev))
    Context::current(dst_dev).synchronize();
  gpu::memcpy_async(dst, src, nbytes, ctx.stream());
  // A host destination is read right away by the caller; a pageable host source must not be
  // freed or changed before the copy reads it. Both need the copy finished; so does a copy to
  // another GPU, whose own stream would otherwise not wait for it.
  if (dst_dev.is_cpu() || src_dev.is_cpu() || !(dst_dev == src_dev)) ctx.synchronize();
}

// The bytes of `shape`'s elements of `dtype`. A count past size_t (2^64 bytes, which no machine
// has) is refused as out of memory: multiplied unchecked it would wrap into a small allocation
// that every later write overruns.
size_t storage_bytes(const Shape& shape, DType dtype) {
  const auto numel = static_cast<uint64_t>(shape.numel());
  const size_t elem = dtype_size(dtype);
  if (numel > SIZE_MAX / elem)
    throw OutOfMemory(detail::str_cat("out of memory: a tensor of shape ", shape, " and dtype ",
                                      dtype_name(dtype),
                                      " needs more than 2^64 bytes: use a smaller batch size or "
                                      "model"));
  return numel * elem;
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  const size_t n = storage_bytes(shape, dtype);
  return Tensor(make_impl(allocate_storage(n, device), 0, shape, dtype));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, const Context& ctx) {
  const size_t n = storage_bytes(shape, dtype);
  return Tensor(make_impl(allocate_storage(n, ctx), 0, shape, dtype));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  const size_t n = storage_bytes(shape, dtype);
  return Tensor(make_impl(allocate_storage(n, Device::cpu(), /*pinned=*/true), 0, shape, dtype));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::from_host(const void* data, const Shape& shape, DType dtype, Device device) {
  CYCLONE_CHECK(data != nullptr || shape.numel() == 0, "Tensor::from_host: null data for ",
                shape.numel(), " elements of shape ", shape);
  Tensor t = empty(shape, dtype, device);
  copy_bytes(t.raw_data(), device, data, Device::cpu(), t.nbytes());
  return t;
}

void Tensor::zero_() const {
  if (nbytes() == 0) return;
  ++impl().version;
  if (device().is_cpu()) {
    std::memset(raw_data(), 0, nbytes());
  } else {
    gpu::memset_async(raw_data(), 0, nbytes(), Context::of(*this).stream());
  }
}

void Tensor::set_data(const Tensor& src) const {
  CYCLONE_CHECK(is_leaf(), "set_data on a tensor with autograd history (use detach first)");
  CYCLONE_CHECK(!requires_grad() || is_floating(src.dtype()),
                "set_data: a tensor that requires grad needs floating data, got ",
                dtype_name(src.dtype()));
  TensorImpl& me = impl();
  const TensorImpl& other = *src.impl_;
  me.storage = other.storage;
  me.offset = other.offset;
  me.shape = other.shape;
  me.dtype = other.dtype;
  me.grad.reset();
  ++me.version;
}

void Tensor::mark_modified() const { ++impl().version; }

uint64_t Tensor::version() const { return impl().version; }

Tensor Tensor::reshape(const std::vector<int64_t>& new_dims) const {
  std::vector<int64_t> dims = new_dims;
  auto new_shape = [&] {
    std::string s = "[";
    for (size_t i = 0; i < new_dims.size(); ++i) s += (i ? ", " : "") + std::to_string(new_dims[i]);
    return s + "]";
  }();
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < static_cast<int>(dims.size()); ++i) {
    if (dims[i] == -1) {
      CYCLONE_CHECK(infer < 0, "reshape of ", shape(), ": more than one -1 in ", new_shape);
      infer = i;
    } else {
      CYCLONE_CHECK(dims[i] >= 0, "reshape of ", shape(), ": bad dimension in ", new_shape);
      known *= dims[i];
    }
  }
  if (infer >= 0) {
    CYCLONE_CHECK(known > 0 && numel() % known == 0, "reshape of ", shape(), " (", numel(),
                  " elements) to ", new_shape, ": cannot infer the -1 dimension");
    dims[infer] = numel() / known;
  }
  const Shape target(dims);
  CYCLONE_CHECK(target.numel() == numel(), "reshape of ", shape(), " (", numel(), " elements) to ",
                target, " (", target.numel(), " elements)");
  auto view = make_impl(impl().storage, impl().offset, target, dtype());
  const Shape original = shape();
  return autograd::record(Tensor(view), "reshape", {*this},
                          [original](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {g.reshape(original.dims())};
                          });
}

Tensor Tensor::flatten(int start_axis) const {
  const int a = shape().normalize_axis(start_axis);
  std::vector<int64_t> dims(shape().dims().begin(), shape().dims().begin() + a);
  dims.push_back(shape().prod(a, rank()));
  return reshape(Shape(dims));
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  CYCLONE_CHECK(rank() >= 1, "slice of a scalar tensor");
  CYCLONE_CHECK(0 <= begin && begin <= end && end <= dim(0), "slice [", begin, ", ", end,
                ") out of range for shape ", shape());
  std::vector<int64_t> dims = shape().dims();
  const int64_t row = dims[0] == 0 ? 0 : numel() / dims[0];
  dims[0] = end - begin;
  const size_t offset = impl().offset + static_cast<size_t>(begin * row) * dtype_size(dtype());
  return Tensor(make_impl(impl().storage, offset, Shape(dims), dtype()));
}

void Tensor::copy_from(const Tensor& src) const {
  check_same_shape("copy_from", *this, src);
  check_same_dtype("copy_from", *this, src);
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
  ++impl().version;
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_from(*this);
  const Device from = device();
  return autograd::record(
      out, "to", {*this},
      [from](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {g.to(from)}; });
}

Tensor Tensor::pin_memory() const {
  Tensor out = empty_pinned(shape(), dtype());
  out.copy_from(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_from(*this);
  return autograd::record(
      out, "clone", {*this},
      [](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {g}; });
}

namespace {
std::atomic<int64_t> g_host_reads{0};
}  // namespace

int64_t host_read_count() { return g_host_reads.load(std::memory_order_relaxed); }

void Tensor::copy_to_host(void* dst) const {
  g_host_reads.fetch_add(1, std::memory_order_relaxed);
  copy_bytes(dst, Device::cpu(), raw_data(), device(), nbytes());
}

double Tensor::item() const {
  CYCLONE_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape());
  return CYCLONE_DISPATCH_ALL(dtype(), T, [&] { return static_cast<double>(item<T>()); });
}

const Tensor& Tensor::set_requires_grad(bool on) const {
  CYCLONE_CHECK(!on || is_floating(dtype()), "requires_grad needs a floating dtype, not ",
                dtype_name(dtype()));
  CYCLONE_CHECK(is_leaf() || on, "cannot turn off requires_grad of a non-leaf tensor (use detach)");
  impl().requires_grad = on;
  return *this;
}

void Tensor::zero_grad(bool set_to_none) const {
  if (!impl().grad) return;
  if (set_to_none)
    impl().grad.reset();
  else
    Tensor(impl().grad).zero_();
}

Tensor Tensor::detach() const {
  return Tensor(make_impl(impl().storage, impl().offset, shape(), dtype()));
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward(*this, grad, retain_graph);
}

// ---- printing ----

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  std::vector<double> v;
  {
    v = CYCLONE_DISPATCH_ALL(dtype(), T, [&] {
      auto h = to_vector<T>();
      return std::vector<double>(h.begin(), h.end());
    });
    // PyTorch-like nesting; beyond 6 entries per dimension only the first and last 3 are shown.
    const auto& dims = shape().dims();
    std::function<void(int, int64_t)> rec = [&](int d, int64_t base) {
      if (d == rank()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, is_floating(dtype()) ? "%.6g" : "%.0f", v[base]);
        os << buf;
        return;
      }
      const int64_t n = dims[d], stride = shape().prod(d + 1, rank());
      os << "[";
      for (int64_t i = 0; i < n; ++i) {
        if (n > 6 && i == 3) {
          os << "..., ";
          i = n - 3;
        }
        rec(d + 1, base + i * stride);
        if (i + 1 < n) os << ", ";
      }
      os << "]";
    };
    os << "tensor(";
    if (numel() > 0 || rank() == 0)
      rec(0, 0);
    else
      os << "[]";
  }
  os << ", shape=" << shape() << ", dtype=" << dtype_name(dtype()) << ", device=" << device();
  if (requires_grad()) os << ", requires_grad=true";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

std::string shapes_str(std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  std::string s;
  for (const auto& [name, t] : tensors) {
    if (!s.empty()) s += " and ";
    s += std::string(name) + " " + (t->defined() ? t->shape().str() : "undefined");
  }
  return s;
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  CYCLONE_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device(),
                " and ", b.device(), ")");
}
void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  CYCLONE_CHECK(a.shape() == b.shape(), op, ": shape mismatch, ", a.shape(), " vs ", b.shape());
}
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  CYCLONE_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " vs ",
                dtype_name(b.dtype()));
}

void check_float(const char* op, const Tensor& t, const char* what) {
  CYCLONE_CHECK(t.dtype() == DType::kFloat32 || t.dtype() == DType::kFloat64, op, ": ",
                what ? what : "", what ? " " : "", "needs float32 or float64, got ",
                dtype_name(t.dtype()));
}

void check_floating(const char* op, const Tensor& t, const char* what) {
  CYCLONE_CHECK(t.dtype() == DType::kFloat32 || t.dtype() == DType::kFloat64 || is_half(t.dtype()),
                op, ": ", what ? what : "", what ? " " : "",
                "needs float32, float64, bfloat16 or float16, got ", dtype_name(t.dtype()));
}

}  // namespace cyclone
