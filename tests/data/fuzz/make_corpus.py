#!/usr/bin/env python3
"""Writes the seed corpus of the parser fuzzer (data/fuzz/fuzz_parsers.cpp) into corpus/: small
valid IDX, gzipped IDX and CIFAR-10/100 inputs, plus a few near-misses, so libFuzzer starts from
inputs that reach deep into each parser. Deterministic; rerun after changing it."""
import gzip, os, struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus")
os.makedirs(out, exist_ok=True)

def idx(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

images = idx(0x08, [2, 3, 4], bytes(range(24)))
labels = idx(0x08, [3], bytes([0, 9, 5]))
write("idx_images_u8", images)
write("idx_labels_u8", labels)
write("idx_float32", idx(0x0D, [2, 2], struct.pack(">4f", 1, 2, 3, 4)))
write("idx_truncated", images[:-5])
write("idx_huge_dims", idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF, 28], b"\x00" * 16))
# mtime=0 keeps the gzip bytes (and so the corpus) identical from run to run.
write("idx_images_gz", gzip.compress(images, mtime=0))
write("idx_labels_gz", gzip.compress(labels, mtime=0))
record10 = bytes([3]) + bytes((i * 7) % 256 for i in range(3072))
record100 = bytes([19, 99]) + bytes((i * 11) % 256 for i in range(3072))
write("cifar10_one_record", record10)
write("cifar10_two_records", record10 + bytes([9]) + record10[1:])
write("cifar100_one_record", record100)
write("cifar10_bad_label", bytes([10]) + record10[1:])
