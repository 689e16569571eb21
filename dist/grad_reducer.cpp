#include "cyclone/dist/grad_reducer.h"

namespace cyclone::dist {

GradReducer::GradReducer(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  CYCLONE_CHECK(bucket_bytes > 0, "GradReducer: bucket_bytes ", bucket_bytes, " must be > 0");
  bucket_of_.assign(params_.size(), -1);
  ready_.assign(params_.size(), 0);
  Bucket current;
  int64_t current_bytes = 0;
  DType current_dtype = DType::kFloat32;
  const Device device = params_.empty() ? Device::cpu() : params_.front().device();
  auto close = [&] {
    if (current.params.empty()) return;
    current.flat = Tensor::zeros(Shape{current.numel}, current_dtype, device);
    buckets_.push_back(std::move(current));
    current = Bucket{};
    current_bytes = 0;
  };
  for (int i = static_cast<int>(params_.size()) - 1; i >= 0; --i) {
    const Tensor& p = params_[i];
    CYCLONE_CHECK(p.defined() && is_floating(p.dtype()), "GradReducer: parameter ", i,
                  " is not a floating-point tensor");
    CYCLONE_CHECK(p.device() == device, "GradReducer: parameter ", i, " is on ", p.device().str(),
                  ", the others on ", device.str());
    CYCLONE_CHECK(index_.emplace(p.unsafe_impl(), i).second, "GradReducer: parameter ", i,
                  " is listed twice");
    const int64_t bytes = p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
    if (!current.params.empty() &&
        (p.dtype() != current_dtype || current_bytes + bytes > bucket_bytes))
      close();
    current_dtype = p.dtype();
    bucket_of_[i] = static_cast<int>(buckets_.size());
    current.params.push_back(i);
    current.offsets.push_back(current.numel);
    current.numel += p.numel();
    current_bytes += bytes;
  }
  close();
}

GradReducer::~GradReducer() = default;

namespace {
template <class List, class Get>
bool same_tensors(const std::vector<Tensor>& mine, const List& other, Get get) {
  if (other.size() != mine.size()) return false;
  for (size_t i = 0; i < mine.size(); ++i)
    if (get(other[i]).unsafe_impl() != mine[i].unsafe_impl()) return false;
  return true;
}
}  // namespace

bool GradReducer::serves(const std::vector<Tensor>& params) const {
  return same_tensors(params_, params, [](const Tensor& t) -> const Tensor& { return t; });
}

bool GradReducer::serves(const NamedTensors& params) const {
  return same_tensors(
      params_, params,
      [](const std::pair<std::string, Tensor>& p) -> const Tensor& { return p.second; });
}

void GradReducer::prepare() {
  std::fill(ready_.begin(), ready_.end(), 0);
  for (Bucket& b : buckets_) {
    b.pending = 0;
    for (int i : b.params)
      if (params_[i].requires_grad()) ++b.pending;
    b.work.reset();
  }
  next_ = 0;
  launched_early_ = 0;
  in_pass_ = true;
  launch_ready_in_order();  // buckets of frozen parameters only
}

void GradReducer::mark_ready(const Tensor& leaf) {
  if (!in_pass_) return;
  const auto it = index_.find(leaf.unsafe_impl());
  if (it == index_.end() || ready_[it->second]) return;
  ready_[it->second] = 1;
  if (!params_[it->second].requires_grad()) return;
  --buckets_[bucket_of_[it->second]].pending;
  const size_t before = next_;
  launch_ready_in_order();
  launched_early_ += static_cast<int64_t>(next_ - before);
}

void GradReducer::launch_ready_in_order() {
  while (next_ < buckets_.size() && buckets_[next_].pending == 0) launch(buckets_[next_++]);
}

void GradReducer::launch(Bucket& b) {
  for (size_t k = 0; k < b.params.size(); ++k) {
    const Tensor& p = params_[b.params[k]];
    const Tensor view = b.flat.slice(b.offsets[k], b.offsets[k] + p.numel());
    const Tensor g = p.grad();
    if (g.defined() && p.requires_grad())
      view.copy_from(g.reshape({p.numel()}));
    else
      view.zero_();
  }
  b.work = comm_.all_reduce_async(b.flat, ReduceOp::kAvg);
}

void GradReducer::finish() {
  CYCLONE_CHECK(in_pass_, "GradReducer::finish() without prepare()");
  in_pass_ = false;
  while (next_ < buckets_.size()) launch(buckets_[next_++]);
  for (Bucket& b : buckets_) {
    b.work->wait();
    b.work.reset();
    for (size_t k = 0; k < b.params.size(); ++k) {
      const Tensor& p = params_[b.params[k]];
      if (!p.requires_grad()) continue;
      if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.dtype(), p.device()));
      p.grad().reshape({p.numel()}).copy_from(b.flat.slice(b.offsets[k], b.offsets[k] + p.numel()));
    }
  }
}

}  // namespace cyclone::dist
