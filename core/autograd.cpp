#include "cyclone/core/autograd.h"

#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/accumulate.h"

namespace cyclone::autograd {

namespace {
thread_local bool t_grad_enabled = true;
}

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Node::Node(std::string name, std::vector<Tensor> inputs, BackwardFn fn)
    : name_(std::move(name)), inputs_(std::move(inputs)), fn_(std::move(fn)) {
  versions_.reserve(inputs_.size());
  for (const Tensor& t : inputs_) versions_.push_back(t.defined() ? t.version() : 0);
}

std::vector<Tensor> Node::apply(const Tensor& grad_output, const Tensor& output) const {
  CYCLONE_CHECK(fn_ != nullptr, "backward through '", name_,
                "' a second time: its saved tensors were freed by the first backward "
                "(pass retain_graph=true to the first call)");
  for (size_t i = 0; i < inputs_.size(); ++i)
    CYCLONE_CHECK(!inputs_[i].defined() || inputs_[i].version() == versions_[i],
                  "backward through '", name_, "': its input ", i, " (shape ", inputs_[i].shape(),
                  ") was changed in place after the forward pass (copy_from, "
                  "zero_, set_data or an optimizer step), so the gradient would be computed with "
                  "the new values: change it after backward(), or use a copy (clone()) in the "
                  "forward pass");
  return fn_(grad_output, output);
}

Tensor record(Tensor output, std::string name, std::vector<Tensor> inputs, BackwardFn fn) {
  if (!needs_grad(inputs)) return output;
  TensorImpl* impl = output.unsafe_impl();
  impl->requires_grad = true;
  impl->grad_fn = std::make_shared<Node>(std::move(name), std::move(inputs), std::move(fn));
  return output;
}

void accumulate(const Tensor& dst, const Tensor& src) {
  check_same_shape("gradient accumulation", dst, src);
  check_same_dtype("gradient accumulation", dst, src);
  check_same_device("gradient accumulation", dst, src);
  const int64_t n = dst.numel();
  if (dst.device().is_cuda()) {
    gpu::accumulate(dst.dtype(), dst.raw_data(), src.raw_data(), n, Context::of(dst).stream());
    return;
  }
  CYCLONE_DISPATCH_FLOATING(dst.dtype(), T, [&] {
    using M = math_t<T>;  // bfloat16 gradients add in float, rounded once
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    for (int64_t i = 0; i < n; ++i) d[i] = T(M(d[i]) + M(s[i]));
  });
}

namespace {
thread_local const std::function<void(const Tensor&)>* g_grad_ready = nullptr;
}  // namespace

GradReadyHook::GradReadyHook(std::function<void(const Tensor&)> fn)
    : fn_(std::move(fn)), prev_(g_grad_ready) {
  g_grad_ready = &fn_;
}
GradReadyHook::~GradReadyHook() { g_grad_ready = prev_; }

namespace {

// Inputs through which a gradient can flow.
template <class F>
void for_each_grad_input(const TensorImpl* impl, F&& f) {
  if (!impl->grad_fn) return;
  for (const Tensor& in : impl->grad_fn->inputs())
    if (in.defined() && in.requires_grad()) f(in.impl_ptr());
}

// Tensors reachable from root, inputs before the outputs that use them (iterative post-order,
// so deep graphs cannot overflow the stack).
std::vector<std::shared_ptr<TensorImpl>> topological_order(
    const std::shared_ptr<TensorImpl>& root) {
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<const TensorImpl*> visited;
  struct Frame {
    std::shared_ptr<TensorImpl> impl;
    bool expanded;
  };
  std::vector<Frame> stack{{root, false}};
  while (!stack.empty()) {
    Frame f = stack.back();
    stack.pop_back();
    if (f.expanded) {
      order.push_back(f.impl);
      continue;
    }
    if (!visited.insert(f.impl.get()).second) continue;
    stack.push_back({f.impl, true});
    for_each_grad_input(f.impl.get(), [&](const std::shared_ptr<TensorImpl>& in) {
      if (!visited.count(in.get())) stack.push_back({in, false});
    });
  }
  return order;
}

struct PendingGrad {
  Tensor grad;
  bool owned = false;  // created by the engine, so it may be updated in place
};

void add_grad(PendingGrad& p, const Tensor& g) {
  if (!p.grad.defined()) {
    p.grad = g;
    return;
  }
  if (!p.owned) {
    p.grad = p.grad.clone();
    p.owned = true;
  }
  accumulate(p.grad, g);
}

// The gradient 1 of a one-element root. Copying it from the host would wait for the GPU on every
// backward(), so one tensor per (thread, device, dtype) is made once and shared: the engine never
// writes into a gradient it did not create (add_grad and the leaf path copy first).
Tensor unit_gradient(const Tensor& root) {
  thread_local std::map<std::tuple<int, int, int>, Tensor> ones;
  const Device d = root.device();
  const std::tuple<int, int, int> key{static_cast<int>(d.type), d.index,
                                      static_cast<int>(root.dtype())};
  auto it = ones.find(key);
  if (it == ones.end()) {
    Tensor one;
    CYCLONE_DISPATCH_FLOATING(root.dtype(), T, [&] {
      const T v = static_cast<T>(1.0f);  // 1 in the root's own dtype (two bytes for 16-bit ones)
      one = Tensor::from_host(&v, Shape{}, root.dtype(), d);
    });
    it = ones.emplace(key, one).first;
  }
  return it->second.reshape(root.shape());
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  CYCLONE_CHECK(root.requires_grad(),
                "backward() of a tensor that does not require grad (no input of the graph has "
                "requires_grad set, or it was computed under a NoGradGuard)");
  NoGradGuard no_grad;
  Tensor seed = grad_root;
  if (!seed.defined()) {
    CYCLONE_CHECK(root.numel() == 1,
                  "backward() without a gradient needs a one-element tensor, got shape ",
                  root.shape());
    seed = unit_gradient(root);
  } else {
    check_same_shape("backward", root, seed);
    check_same_dtype("backward", root, seed);
  }

  const auto order = topological_order(root.impl_ptr());
  std::unordered_map<const TensorImpl*, PendingGrad> grads;
  grads[root.unsafe_impl()].grad = seed;

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const std::shared_ptr<TensorImpl>& impl = *it;
    auto found = grads.find(impl.get());
    if (found == grads.end()) continue;  // no gradient reached it
    PendingGrad pending = std::move(found->second);
    grads.erase(found);
    const Tensor& g = pending.grad;

    if (!impl->grad_fn) {  // a leaf: accumulate into .grad
      if (!impl->requires_grad) continue;
      CYCLONE_CHECK(g.shape() == impl->shape && g.dtype() == impl->dtype &&
                        g.device() == impl->storage.device,
                    "gradient for a leaf of shape ", impl->shape, " ", dtype_name(impl->dtype),
                    " on ", impl->storage.device, " is ", g.shape(), " ", dtype_name(g.dtype()),
                    " on ", g.device());
      if (!impl->grad)
        impl->grad = (pending.owned ? g : g.clone()).impl_ptr();
      else
        accumulate(Tensor(impl->grad), g);
      if (g_grad_ready) (*g_grad_ready)(Tensor(impl));
      continue;
    }

    autograd::Node& node = *impl->grad_fn;
    std::vector<Tensor> input_grads = node.apply(g, Tensor(impl));
    const auto& inputs = node.inputs();
    CYCLONE_CHECK(input_grads.size() == inputs.size(), "backward of '", node.name(), "' returned ",
                  input_grads.size(), " gradients for ", inputs.size(), " inputs");
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& in = inputs[i];
      if (!in.defined() || !in.requires_grad() || !input_grads[i].defined()) continue;
      CYCLONE_CHECK(input_grads[i].shape() == in.shape() && input_grads[i].dtype() == in.dtype(),
                    "backward of '", node.name(), "': gradient of input ", i, " is ",
                    input_grads[i].shape(), " ", dtype_name(input_grads[i].dtype()),
                    " but the input is ", in.shape(), " ", dtype_name(in.dtype()));
      add_grad(grads[in.unsafe_impl()], input_grads[i]);
    }
    if (!retain_graph) node.release();
  }
}

}  // namespace cyclone::autograd
