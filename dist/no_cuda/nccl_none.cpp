// Built without CUDA: there is no NCCL communicator (tensors are never on a GPU).
#include "cyclone/dist/backends.h"

namespace cyclone::dist::detail {

bool nccl_built() { return false; }
std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, int device, double) {
  throw Error("NCCL communicator for cuda:" + std::to_string(device) +
              ": this Cyclone was built without CUDA");
}

}  // namespace cyclone::dist::detail
