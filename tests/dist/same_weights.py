"""Two runs that must train alike (a data-parallel job and one process, tests/dist/test_dist_cli.sh).

    same_weights.py LABEL RUN_A RUN_B [--accuracy]

Every tensor of RUN_A/model.safetensors and RUN_B/model.safetensors (running statistics too) within
1e-4; with --accuracy also the summaries' final test accuracies within 2e-3. Prints the largest
difference; exits non-zero when they differ.
"""
import json
import sys

from safetensors.numpy import load_file

label, one, two = sys.argv[1:4]
a, b = load_file(one + "/model.safetensors"), load_file(two + "/model.safetensors")
assert a.keys() == b.keys(), (sorted(a.keys()), sorted(b.keys()))
worst = max(float(abs(a[k].astype(float) - b[k].astype(float)).max()) for k in a)
scale = max(float(abs(a[k].astype(float)).max()) for k in a)
print(f"{label}: max |w_a - w_b| = {worst:.3g} over {len(a)} tensors (weights up to {scale:.3g})")
assert worst < 1e-4, worst
if "--accuracy" in sys.argv[4:]:
    s1, s2 = (json.load(open(d + "/summary.json")) for d in (one, two))
    assert abs(s1["final_test_accuracy"] - s2["final_test_accuracy"]) < 2e-3, (s1, s2)
