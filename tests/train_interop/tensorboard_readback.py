#!/usr/bin/env python3
"""Our TensorBoard event files read back by TensorBoard itself (PyPI `tensorboard`).

tensorboard_peer writes a run with known scalars and a text summary; TensorBoard's
EventAccumulator (what `tensorboard --logdir` serves) and its event file loaders must find the
same tags, steps, wall times and float32 values, with every record's CRC accepted.
Usage: tensorboard_readback.py <path to tensorboard_peer>
"""
import math
import os
import struct
import subprocess
import sys
import tempfile

# No skip when the package is missing: scripts/install_deps.sh installs it, and a check that
# silently does not run would hide a broken event format.
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


LOSS = [(1700000000.0 + s / 4.0, s, f32(1.0 / (s + 1))) for s in range(5)]
BIG = 5000000000
TEXT = "lr: 3e-4, *batch* 64"


def check_accumulator(log_dir):
    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"loss/train", "lr", "acc/val", "grad_norm"}, tags
    got = [(e.wall_time, e.step, e.value) for e in acc.Scalars("loss/train")]
    assert got == LOSS, f"loss/train: {got} != {LOSS}"
    (lr,) = acc.Scalars("lr")
    assert (lr.wall_time, lr.step, lr.value) == (1700000100.5, BIG, f32(3e-4)), lr
    (a,) = acc.Scalars("acc/val")
    assert (a.wall_time, a.step, a.value) == (1700000100.5, BIG, 0.9375), a
    (g,) = acc.Scalars("grad_norm")
    assert g.step == BIG + 1 and math.isnan(g.value), g
    assert "config" in tags["tensors"], tags
    (t,) = acc.Tensors("config")
    assert t.step == BIG + 2 and t.wall_time == 1700000102.0, t
    assert list(t.tensor_proto.string_val) == [TEXT.encode()], t.tensor_proto
    assert "config" in acc.PluginTagToContent("text"), acc.PluginTagToContent("text")
    assert acc.file_version == 2.0, acc.file_version


def check_raw_events(path):
    # The legacy loader hands back the Event protos exactly as stored.
    loader_cls = getattr(event_file_loader, "LegacyEventFileLoader", event_file_loader.EventFileLoader)
    events = list(loader_cls(path).Load())
    assert len(events) == 1 + 5 + 3, f"{len(events)} events: a record was rejected or lost"
    first = events[0]
    assert first.file_version == "brain.Event:2", first
    assert not first.HasField("summary")
    assert abs(first.wall_time - os.path.getmtime(path)) < 3600, first.wall_time
    two = events[6]
    assert [(v.tag, v.simple_value) for v in two.summary.value] == [
        ("lr", f32(3e-4)),
        ("acc/val", 0.9375),
    ], two
    # The current loader migrates simple_value to scalar tensors on the way in: it must too.
    migrated = list(event_file_loader.EventFileLoader(path).Load())
    assert len(migrated) == len(events)
    vals = [v for e in migrated for v in e.summary.value if v.tag == "loss/train"]
    assert [v.tensor.float_val[0] for v in vals] == [v for _, _, v in LOSS], vals


def check_restart(log_dir):
    # A resumed run's purge_from(4): the first file's steps 4..9 are dropped, 4..6 come again.
    assert len(os.listdir(log_dir)) == 2, os.listdir(log_dir)
    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    acc.Reload()
    got = [(e.step, e.value) for e in acc.Scalars("loss/train")]
    want = [(s, f32(1.0 / (s + 1))) for s in range(4)] + [(s, 10.0 + s) for s in range(4, 7)]
    assert got == want, f"after the restart marker: {got} != {want}"


def main():
    peer = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        log_dir = os.path.join(d, "runs", "exp1")
        restart_dir = os.path.join(d, "runs", "resumed")
        out = subprocess.run(
            [peer, log_dir, restart_dir], check=True, capture_output=True, text=True
        )
        path = out.stdout.strip()
        assert os.path.dirname(path) == log_dir, path
        assert os.path.basename(path).startswith("events.out.tfevents."), path
        assert os.listdir(log_dir) == [os.path.basename(path)], os.listdir(log_dir)
        check_accumulator(log_dir)
        check_raw_events(path)
        check_restart(restart_dir)
    print(
        "tensorboard interop: 4 scalar tags, 8 points and 1 text read back by TensorBoard;"
        " a restart marker purges the earlier file's later steps"
    )


if __name__ == "__main__":
    main()
