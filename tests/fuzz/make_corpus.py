#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets in fuzz/ that are not written by the targets
themselves: safetensors/corpus (files from the reference `safetensors` writer, hand-made dtypes it
lacks, and near-misses) and config/corpus (every committed config, YAML and JSON, and one policy
of each kind). The checkpoint corpus comes from real checkpoints:
    build/fuzz/cyclone_fuzz_checkpoint --write-seeds tests/fuzz/checkpoint/corpus
Deterministic; rerun after changing it (python3 tests/fuzz/make_corpus.py)."""
import glob, json, os, struct

import numpy as np
from safetensors.numpy import save

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def write(sub, name, data):
    out = os.path.join(here, sub, "corpus")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def st_raw(header, payload):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + payload


# ---- safetensors ----
write("safetensors", "reference_f32_f64_i32_u8", save({
    "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
    "bn.running_var": np.array([1.5, 2.5], dtype=np.float64),
    "bn.num_batches_tracked": np.array([7], dtype=np.int32),
    "mask": np.array([[0, 1], [255, 3]], dtype=np.uint8),
}, metadata={"format": "pt", "optimizer": '{"name": "sgd"}'}))
write("safetensors", "reference_f16_scalar_empty", save({
    "half": np.array([1.0, -2.0, 0.5], dtype=np.float16),
    "scalar": np.array(3.0, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
}))
write("safetensors", "empty_header", st_raw({}, b""))
write("safetensors", "bf16_hand_made",
      st_raw({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\x80\x3f\x00\x40"))
write("safetensors", "overlapping_offsets",
      st_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4))
write("safetensors", "huge_shape",
      st_raw({"a": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 16]}}, b"\x00" * 16))
write("safetensors", "header_length_past_end", struct.pack("<Q", 2**63 + 5) + b"{}")

# ---- configs and policies (first byte: even = YAML, odd = JSON, 'P' = a policy) ----
for path in sorted(glob.glob(os.path.join(root, "configs", "*"))):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        text = f.read()
    prefix = b"\x00" if name.endswith((".yml", ".yaml")) else b"\x01"
    write("config", "config_" + name.replace(".", "_"), prefix + text)
policies = [
    {"policy": "constant", "lr": 0.1, "momentum": 0.9},
    {"policy": "step", "lr": 0.1, "step_size": 3, "gamma": 0.5},
    {"policy": "multistep", "lr": 0.1, "milestones": [3, 9], "gamma": 0.2},
    {"policy": "exponential", "lr": 0.1, "gamma": 0.97},
    {"policy": "inverse_time", "lr": 0.1, "k": 0.05},
    {"policy": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 6},
    {"policy": "triangular2", "base_lr": 0.01, "max_lr": 0.1, "step_size": 6},
    {"policy": "exp_range", "base_lr": 0.0, "max_lr": 1.0, "step_size": 4, "gamma": 0.9},
    {"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100, "anneal": "linear"},
    {"policy": "cosine", "lr": 0.1, "total_steps": 30, "min_lr": 0.001},
    {"policy": "sgdr", "lr": 0.1, "min_lr": 0.001, "cycle_len": 7, "cycle_mult": 2},
    {"policy": "polynomial", "lr": 0.1, "total_steps": 30, "power": 2, "end_lr": 0.001},
    {"policy": "linear", "start_lr": 0.001, "end_lr": 0.1, "total_steps": 8},
    {"policy": "plateau", "lr": 1},
    {"policy": "sequence", "parts": [
        {"policy": "linear", "start_lr": 0, "end_lr": 0.1, "total_steps": 5, "steps": 5},
        {"policy": "sgdr", "lr": 0.1, "cycle_len": 6, "steps": 30},
        {"policy": "constant", "lr": 0.001}]},
]
for p in policies:
    write("config", "policy_" + p["policy"], b"P" + json.dumps(p).encode())
# A minimal YAML config in microDL's shape and a JSON one in the old spellings.
write("config", "minimal_yaml", b"\x00" + b"""dataset:
  name: synthetic
network:
  class: mlp-8
trainer:
  batch_size: 16
  max_epochs: 1
  optimizer: {name: Adam, lr: 1.0e-3}
  callbacks:
    LearningRateScheduler: {lr_find: false, base_lr: 1e-4, max_lr: 1e-2, step_size: 2}
""")
write("config", "aliases_json", b"\x01" + json.dumps({
    "dataset": {"name": "synthetic"}, "model": {"class": "lenet5"},
    "trainer": {"epochs": 1, "optimizer": {"name": "sgd", "momentum": 0.9}},
    "policy": {"policy": "one_cycle", "max_lr": "finder", "total_steps": "2_epochs"}}).encode())
