#include "cyclone/core/shape.h"

#include <limits>

#include "cyclone/core/error.h"

namespace cyclone {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {
  for (int64_t d : dims_) CYCLONE_CHECK(d >= 0, "negative dimension in shape ", str());
  (void)numel();  // overflow check
}

int64_t Shape::numel() const { return prod(0, rank()); }

int64_t Shape::prod(int begin, int end) const {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) {
    const int64_t d = dims_[i];
    CYCLONE_CHECK(d == 0 || n <= std::numeric_limits<int64_t>::max() / d, "shape ", str(),
                  " has more elements than fit in 64 bits");
    n *= d;
  }
  return n;
}

int Shape::normalize_axis(int axis) const {
  const int r = rank();
  CYCLONE_CHECK(axis >= -r && axis < r, "axis ", axis, " is out of range for shape ", str());
  return axis < 0 ? axis + r : axis;
}

std::string Shape::str() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace cyclone
