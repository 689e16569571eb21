#!/usr/bin/env python3
"""./bin/datasets and ./bin/best_lr fetching datasets from a local HTTP server (no internet):
success end to end (then training reads the data), verify, a resumed transfer, checksum mismatch,
a download longer than its published size, HTTP 404, connection refused, several datasets in one
fetch, an archive with an escaping member, two processes at once, a data
directory that cannot be created, a full disk (as root: a small tmpfs), few file descriptors
(ulimit -n) and --no_download.

    fetch_e2e.py <datasets> <best_lr> <http_server.py>
"""
import gzip
import hashlib
import io
import json
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

datasets_bin, best_lr_bin, server_py = map(os.path.abspath, sys.argv[1:4])
tmp = tempfile.mkdtemp(prefix="cyclone_fetch_")
www = os.path.join(tmp, "www")
os.makedirs(www)
failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else "  " + detail))
    if not ok:
        failures.append(what)


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def cifar_batch(n, seed):
    out = bytearray()
    for i in range(n):
        out.append((i + seed) % 10)
        out += bytes(((i * 7 + j + seed) % 256) for j in range(3072))
    return bytes(out)


def make_tar(path, members):
    with tarfile.open(path, "w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def idx_images(n):
    return struct.pack(">IIII", 0x00000803, n, 28, 28) + bytes((i * 13) % 256 for i in range(n * 784))


def idx_labels(n):
    return struct.pack(">II", 0x00000801, n) + bytes(i % 10 for i in range(n))


# ---- what the server offers ----
cifar_members = [("cifar-10-batches-bin/data_batch_%d.bin" % k, cifar_batch(8, k)) for k in range(1, 6)]
cifar_members += [("cifar-10-batches-bin/test_batch.bin", cifar_batch(8, 9)),
                  ("cifar-10-batches-bin/readme.html", b"<html></html>")]
make_tar(os.path.join(www, "cifar-10-binary.tar.gz"), cifar_members)
make_tar(os.path.join(www, "evil.tar.gz"), [("../escape.bin", b"x" * 10)] + cifar_members)
mnist = {"train-images-idx3-ubyte.gz": idx_images(32), "train-labels-idx1-ubyte.gz": idx_labels(32),
         "t10k-images-idx3-ubyte.gz": idx_images(16), "t10k-labels-idx1-ubyte.gz": idx_labels(16)}
for name, raw in mnist.items():
    with open(os.path.join(www, name), "wb") as f:
        f.write(gzip.compress(raw))

log_path = os.path.join(tmp, "server.log")
server = subprocess.Popen([sys.executable, server_py, www, "--fail-once", "/resume/cifar-10-binary.tar.gz:1000"],
                          stdout=subprocess.PIPE, stderr=open(log_path, "w"), text=True)
port = int(server.stdout.readline())
os.makedirs(os.path.join(www, "resume"))
shutil.copy(os.path.join(www, "cifar-10-binary.tar.gz"), os.path.join(www, "resume"))
base = "http://127.0.0.1:%d" % port


def entry(name, url_path=None, md5sum=None, size=None):
    p = os.path.join(www, name)
    return {"url": base + "/" + (url_path or name), "md5": md5sum or md5(p),
            "size": os.path.getsize(p) if size is None else size}


def manifest(path, content):
    with open(path, "w") as f:
        json.dump(content, f)
    return path


good = manifest(os.path.join(tmp, "good.json"), {
    "cifar10": [entry("cifar-10-binary.tar.gz")],
    "mnist": [entry(n) for n in mnist]})


def run(*args, timeout=120, env=None, cwd=None):
    t0 = time.time()
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    return p.returncode, p.stdout, p.stderr, time.time() - t0


def one_line(err):
    return len(err.strip().splitlines()) == 1


try:
    # ---- success: fetch, files in place, nothing half-written, verify ----
    d = os.path.join(tmp, "cifar")
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", d, "--manifest", good)
    check("datasets fetch cifar10 exits 0", rc == 0, err)
    check("the download's closing line gives its rate in bytes per second",
          re.search(r" in [0-9:.]+s? \([0-9.]+ (B|KiB|MiB|GiB)/s\)", out + err) is not None, out + err)
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    want = sorted(["data_batch_%d.bin" % k for k in range(1, 6)] + ["test_batch.bin"])
    check("the six CIFAR files are in place, nothing else visible",
          [n for n in names if not n.startswith(".")] == want, str(names))
    check("no .part, archive, lock or temporary directory left",
          not any(n.endswith(".part") or n.endswith(".tar.gz") or n.startswith(".extract") or n.endswith(".lock") for n in names), str(names))
    check("extracted bytes are the archive's", open(os.path.join(d, "test_batch.bin"), "rb").read() == cifar_members[5][1])
    rc, out, err, _ = run(datasets_bin, "verify", "cifar10", "--data_dir", d, "--manifest", good)
    check("datasets verify passes", rc == 0 and "mismatch" not in out, out + err)
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", d, "--manifest", good)
    check("a second fetch finds it present", rc == 0 and "already present" in out, out + err)
    with open(os.path.join(d, "test_batch.bin"), "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 1]))
    rc, out, err, _ = run(datasets_bin, "verify", "cifar10", "--data_dir", d, "--manifest", good)
    check("verify detects one changed byte", rc == 1 and "test_batch.bin" in out and "mismatch" in out, out + err)
    # A present dataset with a damaged file: fetch said "already present" and exited 0.
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", d, "--manifest", good)
    check("fetch of a present but damaged dataset exits 1 naming the file and what to do",
          rc == 1 and one_line(err) and "already present" in err and "test_batch.bin is damaged" in err
          and "remove it and fetch again" in err, out + err)

    # ---- best_lr fetches MNIST by itself and trains on it ----
    dm = os.path.join(tmp, "mnist")
    rc, out, err, _ = run(best_lr_bin, "--dataset=mnist", "--data_dir=" + dm, "--manifest=" + good,
                          "--skip_test=0.01", "--num_epochs=1", "--batch_size=8", "--no_plots",
                          "--log_dir=" + os.path.join(tmp, "logs"), "--workers=0")
    check("best_lr fetches mnist and trains (exit 0)", rc == 0, err[-2000:])
    check("the .gz files are kept as published", all(md5(os.path.join(dm, n)) == md5(os.path.join(www, n)) for n in mnist))

    # ---- a transfer cut short, resumed with Range ----
    dr = os.path.join(tmp, "resume")
    resume = manifest(os.path.join(tmp, "resume.json"), {"cifar10": [entry("cifar-10-binary.tar.gz", "resume/cifar-10-binary.tar.gz")]})
    rc1, _, err1, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", dr, "--manifest", resume)
    rc2, _, err2, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", dr, "--manifest", resume)
    log = open(log_path).read()
    check("the cut transfer fails, the second completes", rc1 == 1 and rc2 == 0, err1 + err2)
    check("the second request asked for a Range", "range=bytes=" in log, log[-1500:])

    # ---- checksum mismatch: nothing left in place ----
    dc = os.path.join(tmp, "bad_md5")
    bad = manifest(os.path.join(tmp, "bad.json"), {"cifar10": [entry("cifar-10-binary.tar.gz", md5sum="0" * 32)]})
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", dc, "--manifest", bad)
    left = [n for n in os.listdir(dc)] if os.path.isdir(dc) else []
    check("md5 mismatch: exit 1, one line naming md5", rc == 1 and "md5" in err.lower() and one_line(err), err)
    check("md5 mismatch: nothing left but the lock", all(n.startswith(".cyclone-fetch") for n in left), str(left))

    # ---- 404 and connection refused ----
    missing = manifest(os.path.join(tmp, "404.json"), {"cifar10": [dict(entry("cifar-10-binary.tar.gz"), url=base + "/nope.tar.gz")]})
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", os.path.join(tmp, "d404"), "--manifest", missing)
    check("HTTP 404: exit 1, one line naming 404 and the URL", rc == 1 and "404" in err and "/nope.tar.gz" in err and one_line(err), err)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    refused = manifest(os.path.join(tmp, "refused.json"), {"cifar10": [dict(entry("cifar-10-binary.tar.gz"), url="http://127.0.0.1:%d/x.tar.gz" % closed)]})
    rc, out, err, secs = run(datasets_bin, "fetch", "cifar10", "--data_dir", os.path.join(tmp, "dref"), "--manifest", refused)
    check("connection refused: exit 1 within 5 s, says so", rc == 1 and secs < 5 and "refused" in err.lower(), "%.1f s: %s" % (secs, err))
    check("failures say what to do (fetch by hand, the directory)", "by hand" in err and "dref" in err, err)
    check("a failed fetch leaves no folder it made", not os.path.exists(os.path.join(tmp, "dref")), str(os.listdir(tmp)))
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", os.path.join(tmp, "dref2", "a", "b"), "--manifest", refused)
    check("... nor its parents (a --data_dir typo)", rc == 1 and not os.path.exists(os.path.join(tmp, "dref2")), err)
    kept = os.path.join(tmp, "dkept")
    os.makedirs(kept)
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", kept, "--manifest", refused)
    check("a folder that was there stays, with no lock file in it", rc == 1 and os.listdir(kept) == [], str(os.path.exists(kept) and os.listdir(kept)))

    # ---- several datasets: every one is tried, each failure is its own line ----
    # (no --data_dir with two names: the default directories, under a fresh working directory)
    work = os.path.join(tmp, "work")
    os.makedirs(work)
    cifar_offline = [dict(entry("cifar-10-binary.tar.gz"), url="http://127.0.0.1:%d/x.tar.gz" % closed)]
    half = manifest(os.path.join(tmp, "half.json"), {"cifar10": cifar_offline, "mnist": [entry(n) for n in mnist]})
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "mnist", "--manifest", half, cwd=work)
    check("fetch cifar10 mnist, cifar10 offline: exit 1, mnist still fetched",
          rc == 1 and "mnist: fetched" in out and os.path.isdir(os.path.join(work, "data", "mnist")), out + err)
    check("... one error line, naming cifar10", one_line(err) and err.startswith("datasets: cifar10: "), err)
    both = manifest(os.path.join(tmp, "both.json"), {
        "cifar10": cifar_offline,
        "mnist": [dict(entry(n), url="http://127.0.0.1:%d/%s" % (closed, n)) for n in mnist]})
    shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "mnist", "--manifest", both, cwd=work)
    lines = err.strip().splitlines()
    check("fetch cifar10 mnist, both offline: exit 1, one line for each",
          rc == 1 and len(lines) == 2 and lines[0].startswith("datasets: cifar10: ")
          and lines[1].startswith("datasets: mnist: "), err)

    # ---- a download longer than the manifest's size is stopped as soon as it passes it ----
    os.makedirs(os.path.join(www, "long"))
    with open(os.path.join(www, "long", "cifar-10-binary.tar.gz"), "wb") as f:
        f.write(os.urandom(4 << 20))
    long_url = "long/cifar-10-binary.tar.gz"
    dl = os.path.join(tmp, "long")
    toolong = manifest(os.path.join(tmp, "long.json"), {"cifar10": [entry(long_url, size=1000)]})
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", dl, "--manifest", toolong)
    got = re.search(r"received (\d+) bytes, more than the expected 1000", err)
    check("too long a download: exit 1, one line naming the URL, the expected and the received size",
          rc == 1 and one_line(err) and base + "/" + long_url in err and got is not None, err)
    check("... stopped early (not the whole 4 MiB), no .part left",
          got is not None and int(got.group(1)) < (1 << 20)
          and not any(n.endswith(".part") for n in (os.listdir(dl) if os.path.isdir(dl) else [])), err)

    # ---- an archive with ../escape ----
    de = os.path.join(tmp, "evil", "data")
    evil = manifest(os.path.join(tmp, "evil.json"), {"cifar10": [dict(entry("evil.tar.gz"), name="cifar-10-binary.tar.gz")]})
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", de, "--manifest", evil)
    check("escaping member refused: exit 1 naming it", rc == 1 and "../escape.bin" in err, err)
    check("nothing written outside", not os.path.exists(os.path.join(tmp, "evil", "escape.bin")))

    # ---- two processes fetching the same dataset: one transfer ----
    dt = os.path.join(tmp, "twice")
    before = open(log_path).read().count("GET /cifar-10-binary.tar.gz")
    procs = [subprocess.Popen([datasets_bin, "fetch", "cifar10", "--data_dir", dt, "--manifest", good],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    rcs = [p.wait(timeout=120) for p in procs]
    after = open(log_path).read().count("GET /cifar-10-binary.tar.gz")
    check("two processes: both exit 0", rcs == [0, 0], str(rcs))
    check("two processes: one transfer", after - before == 1, "%d transfers" % (after - before))

    # ---- a directory that cannot be created; --no_download ----
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", "/proc/cyclone_no_such/dir", "--manifest", good)
    check("uncreatable data dir: exit 1 naming it", rc == 1 and "/proc/cyclone_no_such/dir" in err and one_line(err), err)
    rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", "/proc/sys", "--manifest", good)
    check("a data dir that cannot be written: exit 1 naming it", rc == 1 and "/proc/sys" in err and one_line(err), err)
    rc, out, err, _ = run(best_lr_bin, "--dataset=mnist", "--data_dir=" + os.path.join(tmp, "none"), "--no_download", "--skip_test=0.1")
    check("--no_download: exit 1, the not-found message", rc == 1 and "not found" in err and one_line(err), err)

    # ---- a full disk (a small tmpfs; needs root): while downloading, then while unpacking ----
    # The download stage needs an archive larger than the disk: random (incompressible) members.
    import random
    rnd = random.Random(5)
    os.makedirs(os.path.join(www, "big"))
    make_tar(os.path.join(www, "big", "cifar-10-binary.tar.gz"),
             [("cifar-10-batches-bin/data_batch_%d.bin" % k, bytes(rnd.getrandbits(8) for _ in range(3073 * 8)))
              for k in range(1, 6)])
    big = manifest(os.path.join(tmp, "big.json"), {"cifar10": [entry("big/cifar-10-binary.tar.gz")]})
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        print("skip the full-disk checks: mounting a small tmpfs needs root")
    else:
        subprocess.run(["umount", mnt], capture_output=True)
        members = ["data_batch_%d.bin" % k for k in range(1, 6)] + ["test_batch.bin"]
        try:
            # 16k: the 120k archive does not fit; 8k: the 1.3k archive does, its members do not.
            for size, stage, mf, src in [("16k", "download", big, "big/cifar-10-binary.tar.gz"),
                                         ("8k", "unpack", good, "cifar-10-binary.tar.gz")]:
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt], check=True)
                dd = os.path.join(mnt, "cifar")
                rc, out, err, _ = run(datasets_bin, "fetch", "cifar10", "--data_dir", dd, "--manifest", mf)
                check("full disk during the %s: exit 1, one line naming the path and the cause" % stage,
                      rc == 1 and one_line(err) and mnt in err and "No space left on device" in err, err)
                left = sorted(os.listdir(dd)) if os.path.isdir(dd) else []
                # Allowed: hidden files (the lock), a resumable .part, the archive once whole.
                archive = os.path.join(dd, "cifar-10-binary.tar.gz")
                whole = not os.path.exists(archive) or md5(archive) == md5(os.path.join(www, src))
                check("full disk during the %s: no member and no truncated file under a final name" % stage,
                      not any(n in members or n.startswith(".extract") for n in left) and whole, str(left))
                subprocess.run(["umount", mnt], check=True)
        finally:
            subprocess.run(["umount", mnt], capture_output=True)

    # ---- few file descriptors (ulimit -n): libcurl said "Couldn't connect to server" when the
    # socket itself was refused, and the user looked for a network fault ----
    # (Not under ASan, whose runtime needs descriptors and stack of its own.)
    sanitized = b"__asan_init" in open(datasets_bin, "rb").read()
    said_socket = sanitized
    for n in range(4, 17) if not sanitized else []:
        p = subprocess.run(
            [datasets_bin, "fetch", "mnist", "--data_dir", os.path.join(tmp, "fds%d" % n), "--manifest", good],
            capture_output=True, text=True, timeout=120, close_fds=True,
            preexec_fn=lambda n=n: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)))
        if p.returncode != 0:
            check("under ulimit -n %d: exit 1, one line naming the limit" % n,
                  p.returncode == 1 and one_line(p.stderr) and "ulimit -n, is %d:" % n in p.stderr, p.stderr)
            said_socket |= "cannot open a network socket: Too many open files" in p.stderr
    check("under some ulimit -n from 4 to 16 the refused socket is named", said_socket)

    # ---- the manifest and list commands ----
    rc, out, err, _ = run(datasets_bin, "manifest")
    m = json.loads(out) if rc == 0 else {}
    check("datasets manifest prints the built-in sources", rc == 0 and m.get("cifar10", [{}])[0].get("md5") == "c32a1d4ab5d03f1284b67883e8d87530", out[:300] + err)
    rc, out, err, _ = run(datasets_bin, "list")
    check("datasets list names every dataset", rc == 0 and all(n in out for n in ["mnist", "fashion_mnist", "cifar10", "cifar100"]), out + err)
    if os.path.isdir("/usr/share/datasets/fashion-mnist"):
        rc, out, err, _ = run(datasets_bin, "verify", "fashion_mnist")
        check("Debian's recompressed Fashion-MNIST verifies as the published data",
              rc == 0 and "recompressed" in out, out + err)
    rc, out, err, _ = run(datasets_bin, "list", "cifar10", "--data_dir", d, "--manifest", good)
    check("datasets list NAME --data_dir D: that dataset, in D",
          rc == 0 and d in out and "present" in out and "mnist" not in out, out + err)
    rc, out, err, _ = run(datasets_bin, "list", "--data_dir", d)
    check("datasets list --data_dir without one dataset: exit 2 naming --data_dir",
          rc == 2 and "--data_dir" in err and one_line(err), err)
    notjson = os.path.join(tmp, "notjson.json")
    with open(notjson, "w") as f:
        f.write("not json")
    for cmd in (["list"], ["verify", "cifar10", "--data_dir", d]):
        rc, out, err, _ = run(datasets_bin, *cmd, "--manifest", notjson)
        check("datasets %s --manifest <not JSON>: exit 2 before any output" % cmd[0],
              rc == 2 and out == "" and "--manifest" in err and one_line(err), out + err)
    rc, out, err, _ = run(datasets_bin, "frobnicate")
    check("unknown command: exit 2", rc == 2 and one_line(err), err)
    rc, out, err, _ = run(datasets_bin, "bogus")
    check("an unknown command without names is named as one",
          rc == 2 and one_line(err) and "unknown command 'bogus'" in err, err)
    for cmd in ("list", "fetch", "verify"):
        rc, out, err, _ = run(datasets_bin, cmd, "synthetic")
        check("datasets %s synthetic: exit 2, one line saying it has no files" % cmd,
              rc == 2 and out == "" and one_line(err) and "synthetic" in err and "no files to " + cmd in err,
              out + err)

    # ---- verify and list of a dataset not fetched: the same file names, advice that fits ----
    dn = os.path.join(tmp, "not_fetched")
    os.makedirs(dn)
    p = subprocess.run([datasets_bin, "verify", "mnist", "--data_dir", dn, "--manifest", good],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    lines = p.stdout.strip().splitlines()
    check("verify, not fetched: exit 1, the failure line after the table (stdout flushed first)",
          p.returncode == 1 and len(lines) == 6 and lines[-1].startswith("datasets: "), p.stdout)
    check("verify, every file missing: says to run datasets fetch NAME, not to remove a file",
          "run datasets fetch mnist --data_dir " + dn in lines[-1] and "remove" not in lines[-1], p.stdout)
    verify_names = sorted(l.split()[0] for l in lines[1:-1] if "missing" in l)
    rc, out, err, _ = run(datasets_bin, "list", "mnist", "--data_dir", dn, "--manifest", good)
    needs = re.search(r"needs (.*) \(datasets fetch", out)
    list_names = sorted(needs.group(1).split(", ")) if needs else []
    check("list and verify name the same files, as a fetch writes them",
          rc == 0 and list_names == verify_names == sorted(mnist), out + p.stdout)
finally:
    server.kill()
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(1 if failures else 0)
