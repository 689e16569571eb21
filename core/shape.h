// A tensor's dimensions. Tensors are contiguous and row-major, so a shape is all a layout needs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

namespace cyclone {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::vector<int64_t> dims);

  int rank() const { return static_cast<int>(dims_.size()); }
  // Product of the dimensions (1 for a scalar shape []). Checked against overflow.
  int64_t numel() const;
  // Dimension i; negative i counts from the end (-1 is the last). Throws when out of range.
  int64_t operator[](int i) const { return dims_[normalize_axis(i)]; }
  int normalize_axis(int axis) const;
  const std::vector<int64_t>& dims() const { return dims_; }

  // Product of dims [begin, end).
  int64_t prod(int begin, int end) const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }
  std::string str() const;  // "[2, 3, 4]"

 private:
  std::vector<int64_t> dims_;
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

}  // namespace cyclone
