// Writes a TensorBoard run with known contents for tensorboard_readback.py to check with
// TensorBoard's own reader. Usage: tensorboard_peer <log dir> [<restart log dir>]; prints the
// event file's path. In the restart folder: a first file with loss/train at steps 0..9, then a
// second (a resumed run) that purges from step 4 and logs steps 4..6 again with other values.
#include <cmath>
#include <cstdio>

#include "cyclone/core/error.h"
#include "cyclone/train/tensorboard.h"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s <log dir> [<restart log dir>]\n", argv[0]);
    return 2;
  }
  try {
    cyclone::train::TensorBoardWriter w(argv[1]);
    // The values the script expects: loss/train = 1 / (step + 1) at steps 0..4 (wall times
    // 1700000000 + step / 4), then one event with two tags at a step past 2^32.
    for (int step = 0; step < 5; ++step)
      w.add_scalar("loss/train", 1.0 / (step + 1), step, 1700000000.0 + step / 4.0);
    w.add_scalars(5000000000LL, {{"lr", 3e-4}, {"acc/val", 0.9375}}, 1700000100.5);
    w.add_scalar("grad_norm", std::nan(""), 5000000001LL, 1700000101.0);
    w.add_text("config", "lr: 3e-4, *batch* 64", 5000000002LL, 1700000102.0);
    w.flush();
    std::printf("%s\n", w.path().c_str());
    if (argc == 3) {
      {
        cyclone::train::TensorBoardWriter first(argv[2]);
        for (int step = 0; step < 10; ++step)
          first.add_scalar("loss/train", 1.0 / (step + 1), step, 1700000000.0 + step);
      }
      cyclone::train::TensorBoardWriter resumed(argv[2]);
      resumed.purge_from(4, 1700000100.0);
      for (int step = 4; step < 7; ++step)
        resumed.add_scalar("loss/train", 10.0 + step, step, 1700000100.0 + step);
    }
  } catch (const cyclone::Error& e) {
    std::fprintf(stderr, "tensorboard_peer: %s\n", e.message().c_str());
    return 1;
  }
  return 0;
}
