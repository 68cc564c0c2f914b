#!/usr/bin/env python3
"""Benchmark mreg against cp and b3sum on the same files, in one run.

Generates a ~1.3 GB "model" folder (two 512 MiB incompressible weight files, a 256 MiB
bf16-like file that zstd shrinks, small JSON/text) and a folder of 5,000 small files,
then times copies, hashing and mreg's push / no-change push / incremental push / pull,
and prints each figure as a ratio to its baseline, with mreg's peak RSS.

The "runs" section writes registries of 1,000 and 10,000 synthetic runs in mreg's own
layout, then times `mreg runs --where … --sort …` (index cold and warm), `mreg log` per
call against a no-op process, and 4 concurrent loggers, checking that nothing was lost.

Warm page cache throughout; `sync` runs before each timed step so earlier writeback
does not leak into it. Shared machines are noisy: compare ratios within one run.

The "stages" section times `mreg promote` with a gate per call, 4 processes promoting
at once (checking that every success is in the chain once, in a serial order), and
`mreg history` and `mreg show NAME@production` on the resulting chain.

The "diff" section pushes three versions of a 512 MiB .safetensors file (32 F32 tensors
of 16 MiB): a base, a fine-tune of its last tensor, a full retrain; then times
`mreg diff` of each pair (tensors compared byte for byte) against `b3sum` and `cp` of
the same two files, checking the tensor counts the diff reports.

The "sync" section pushes a 514 MiB model, then times `mreg sync` to an empty folder
remote (against cp -r) and to an empty bucket on the tests' local S3 server (moto,
against boto3 uploading the same files), a sync with nothing new, and `mreg clone` back
(against cp and boto3 downloads), checking the clone pulls the files byte-identical.

The "gc" section removes 199 of 200 versions of a 100 MiB model and times `mreg gc`
against `rm -rf` of a copy of its object folder, checking the bytes freed and that the
survivor pulls byte-identical; then `mreg gc --dry-run` on 10,000 objects against `find`.
The "gc-bucket" section times `mreg gc` of 5,010 objects on a bucket against boto3
listing and deleting as many keys.

The "env" section times what capturing a run's environment costs: `mreg run -- true`
in a project with a venv of 300 packages and five lock files (one a 1 MiB uv.lock),
alternated with the same run recording no Python environment and no lock files
(`MREG_PYTHON=none`, an empty folder); the difference is the capture's cost, checking
that the run recorded all 300 packages and stored the lock files. Then 10 runs with the
uv.lock changed before each, whose content is masked and stored anew.

The "report" section logs 20 runs of 10,000 steps (loss, acc, lr series), then times
`mreg report` of them (HTML, and `--vega`) against `mreg show RUN --series --json` of the
same 20 runs, which reads and prints every point drawn from; it reports the page's size,
mreg's peak RSS, and checks the page holds a chart per series and a legend entry per run.

The "dedup" section pushes a ~1 GB bf16 .safetensors checkpoint, three fine-tunes of it
and a 10-checkpoint series into registries of format 2 (parts) and format 1 (whole
files), and measures a bf16 byte-plane codec (bench/README.md).

The "mlflow" section writes an MLflow SQLite store of 10,000 runs (one logged by MLflow,
copied in SQL; MLflow must count them all) and times `mreg import mlflow` of it into a
fresh registry and again, checking every run arrived.

The "oci" section times `mreg export --oci` of the model folder against `cp -r`, and
`mreg push-oci` to Debian's docker-registry on 127.0.0.1 against `skopeo copy` of the
same layout, checking the digests skopeo and the registry see.

Usage: bench/run.py [--only SECTIONS] [WORKDIR]
  SECTIONS: comma-separated, of model, small, runs, stages, diff, dedup, sync, gc, gc-bucket, env, report, mlflow, oci (default: all)
  KEEP=1 keeps WORKDIR; MREG=path uses that binary
"""

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def sh(*args, env=None, check=True):
    """Runs a command; returns (seconds, peak RSS of the command in MiB).

    The RSS comes from GNU time: a forked child's own rusage would include the Python
    process it was forked from."""
    subprocess.run(["sync"], check=True)
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *args],
                              env=env, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        kib = int(rss.read().strip().splitlines()[-1] or 0)
    if check and proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}")
    return seconds, kib / 1024


def median(fn, n=3):
    runs = [fn() for _ in range(n)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def paired(base_fn, mreg_fn, n=3):
    """Alternates baseline and mreg runs; returns (baseline s, mreg s, ratio, mreg RSS).

    The ratio is the median of the per-pair ratios, so drift on a shared machine (another
    tenant's I/O, writeback) hits both sides of each pair alike."""
    pairs = [(base_fn(), mreg_fn()) for _ in range(n)]
    base = statistics.median(b[0] for b, _ in pairs)
    ours = statistics.median(m[0] for _, m in pairs)
    ratio = statistics.median(m[0] / b[0] for b, m in pairs)
    return base, ours, ratio, max(m[1] for _, m in pairs)


def ensure_tools(peers=False):
    """Installs GNU time and b3sum, and with `peers` restic and git-lfs, from Debian
    where they are missing (aws comes from pip's awscli)."""
    if peers:
        missing = [p for p in ("restic", "git-lfs") if shutil.which(p) is None]
        if missing:
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False)
        if shutil.which("aws") is None:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "awscli"], check=False)
    if not Path("/usr/bin/time").exists():
        subprocess.run(["apt-get", "install", "-y", "-qq", "time"], check=True)
    if shutil.which("b3sum") is None:
        print("installing b3sum (Debian package)", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "b3sum"], check=True)


def write_random(path, size, seed):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n


def write_bf16_like(path, size):
    """Pairs of (random mantissa byte, exponent-like byte from 8 values): zstd saves ~30%."""
    table = bytes((0x3C + (i % 8)) for i in range(256))
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            out = bytearray(MIB)
            out[0::2] = os.urandom(MIB // 2)
            out[1::2] = os.urandom(MIB // 2).translate(table)
            f.write(out)


def make_model(root):
    root.mkdir(parents=True)
    write_random(root / "model-00001.safetensors", 512 * MIB, 1)
    write_random(root / "model-00002.safetensors", 512 * MIB, 2)
    write_bf16_like(root / "embeddings.bf16.bin", 256 * MIB)
    (root / "config.json").write_text('{"hidden_size": 4096, "layers": 32, "lr": 0.001}\n')
    words = " ".join(f'"tok{i}": {i},' for i in range(120_000))
    (root / "tokenizer.json").write_text("{" + words + "}\n")
    (root / "README.md").write_text("A benchmark model.\n" * 50)


def make_small(root):
    rng = random.Random(5)
    for i in range(5000):
        d = root / f"shard{i % 10}" / f"part{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        size = rng.randint(4 * 1024, 64 * 1024)
        if i % 2:
            data = os.urandom(size)
        else:
            data = (f"row {i} value {rng.random():.6f}\n" * (size // 24 + 1)).encode()[:size]
        (d / f"f{i:05}.dat").write_bytes(data)


class Report:
    """Collects table rows, targets (PASS/MISS) and correctness checks (ok/FAIL)."""

    def __init__(self):
        self.rows = []
        self.targets = []
        self.checks = []

    def row(self, workload, seconds, note=""):
        self.rows.append((workload, seconds, note))

    def heading(self, text):
        self.rows.append((text, None, ""))

    def target(self, name, ok, value):
        self.targets.append((name, ok, value))

    def check(self, name, ok, value):
        """Records a correctness check; a failed one is printed at once, and fails the run."""
        self.checks.append((name, ok, value))
        if not ok:
            print(f"FAIL: {name}: {value}", file=sys.stderr)

    def failed(self):
        return [c for c in self.checks if not c[1]]

    def print(self):
        width = max(len(r[0]) for r in self.rows if r[1] is not None)
        print(f"{'workload':<{width}}  {'seconds':>8}  ratio")
        for name, seconds, note in self.rows:
            if seconds is None:
                print(name)
            else:
                print(f"{name:<{width}}  {seconds:>8.4f}  {note}")
        print("\ntargets:")
        for name, ok, value in self.targets:
            print(f"  {'PASS' if ok else 'MISS'}  {name}: {value}")
        if self.checks:
            print("\nchecks:")
            for name, ok, value in self.checks:
                print(f"  {'ok  ' if ok else 'FAIL'}  {name}: {value}")


def bench_files(work, mreg, env, report, label, maker):
    """Times copies, hashing and mreg's push, pull and fsck on one generated folder."""

    def row(workload, seconds, baseline_name=None, ratio=None):
        report.row(workload, seconds, f"{ratio:.2f}x {baseline_name}" if ratio else "")

    def mreg_cmd(reg, *args):
        return [mreg, "--registry", str(reg), "--no-progress", "-q", *args]

    src = work / label
    print(f"# generating {label} folder", file=sys.stderr)
    maker(src)
    files = [str(p) for p in src.rglob("*") if p.is_file()]
    total = sum(os.path.getsize(p) for p in files)
    report.heading(f"-- {label}: {len(files)} files, {total / 1e9:.2f} GB")

    def cp(then=""):
        dst = work / "cp-dst"
        shutil.rmtree(dst, ignore_errors=True)
        return sh("sh", "-c", f"cp -r '{src}' '{dst}'{then}")

    def fresh_push(i):
        reg = work / f"reg-{label}-{i}"
        subprocess.run([mreg, "init", str(reg), "-q"], check=True, env=env)
        return sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)

    # Baseline and mreg runs alternate: see paired().
    fresh_i = iter(range(3))
    cp_sync, fresh, fresh_ratio, fresh_rss = paired(
        lambda: cp(" && sync"), lambda: fresh_push(next(fresh_i)))
    cp_plain, _ = median(cp)
    verify = f" && find '{work / 'cp-dst'}' -type f -print0 | xargs -0 b3sum --num-threads 2 > /dev/null"
    cp_b3, _ = median(lambda: cp(verify))
    b3, _ = median(lambda: sh("sh", "-c", f"find '{src}' -type f -print0 | xargs -0 b3sum --num-threads 2 > /dev/null"))
    row("cp -r && sync", cp_sync)
    row("cp -r", cp_plain)
    row("cp -r, then b3sum of the copy", cp_b3)
    row("b3sum --num-threads 2", b3)
    row("mreg push (fresh registry)", fresh, "cp -r && sync", fresh_ratio)
    report.target(f"{label}: fresh push <= 1.5x cp -r && sync", fresh_ratio <= 1.5, f"{fresh_ratio:.2f}x")

    reg = work / f"reg-{label}-0"
    time.sleep(2.1)  # let the stat cache trust the files' stamps (racy-git window)
    settle, _ = sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)
    row("mreg push, no change (first re-push)", settle)
    nochange, _ = median(lambda: sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env), 5)
    row("mreg push, no change (stat cache warm)", nochange)

    def touched_push():
        # New modification times, the same bytes: a fresh CI checkout of the folder.
        for p in files:
            os.utime(p)
        return sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)

    b3_all = lambda: sh("sh", "-c", f"find '{src}' -type f -print0 | xargs -0 b3sum --num-threads 2 > /dev/null")
    _, touched, touched_ratio, _ = paired(b3_all, touched_push)
    row("mreg push, same bytes, new mtimes", touched, "b3sum", touched_ratio)
    report.target(f"{label}: re-push of unchanged bytes with new mtimes <= 1.2x b3sum",
                  touched_ratio <= 1.2, f"{touched_ratio:.2f}x")
    if label == "model":
        report.target("model: no-change push <= 50 ms", nochange <= 0.050, f"{nochange * 1000:.0f} ms")
        write_random(src / "model-00002.safetensors", 512 * MIB, 3)
        (src / "config.json").write_text('{"hidden_size": 4096, "layers": 32, "lr": 0.0005}\n')
        incr, _ = sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)
        row("mreg push, 1 weight file + config changed", incr, "cp -r && sync", incr / cp_sync)

    def pull(*extra):
        dst = work / "pull-dst"
        shutil.rmtree(dst, ignore_errors=True)
        return sh(*mreg_cmd(reg, "pull", "m@1", "--to", str(dst), *extra), env=env)

    base, pulled, pull_ratio, pull_rss = paired(cp, pull)
    row("mreg pull", pulled, "cp -r", pull_ratio)
    _, _, verify_ratio, _ = paired(lambda: cp(verify), pull)
    row("mreg pull (vs copy + verify)", pulled, "cp -r, then b3sum", verify_ratio)
    _, durable, durable_ratio, _ = paired(lambda: cp(" && sync"), lambda: pull("--durable"))
    row("mreg pull --durable", durable, "cp -r && sync", durable_ratio)
    shutil.rmtree(work / "pull-dst", ignore_errors=True)
    shutil.rmtree(work / "cp-dst", ignore_errors=True)
    _, fsck, fsck_ratio, fsck_rss = paired(
        lambda: sh("sh", "-c", f"find '{src}' -type f -print0 | xargs -0 b3sum --num-threads 2 > /dev/null"),
        lambda: sh(*mreg_cmd(reg, "fsck"), env=env))
    row("mreg fsck (re-hash all objects)", fsck, "b3sum", fsck_ratio)
    if label == "model":
        report.target("model: pull <= 1.5x cp -r", pull_ratio <= 1.5, f"{pull_ratio:.2f}x")
    peak = max(fresh_rss, pull_rss, fsck_rss)
    report.heading(f"mreg peak RSS (push {fresh_rss:.0f}, pull {pull_rss:.0f}, fsck {fsck_rss:.0f} MiB)")
    report.target(f"{label}: peak RSS <= 150 MiB", peak <= 150, f"{peak:.0f} MiB")
    for p in work.glob(f"reg-{label}-*"):
        shutil.rmtree(p)
    shutil.rmtree(src)


# ---- packs: 5,000 small files, against restic, git-lfs and the copy, on two disks ----

class CountingProxy:
    """A pass-through HTTP proxy in front of the S3 server that counts requests (by
    method) and the bytes of their bodies both ways, so a transfer's requests are
    measured, not estimated."""

    def __init__(self, upstream_port):
        import http.client
        import http.server
        import socketserver
        import threading

        counts = self.counts = {}
        self.bytes = [0, 0]
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                reply = conn.getresponse()
                data = reply.read()
                with lock:
                    counts[self.command] = counts.get(self.command, 0) + 1
                    outer.bytes[0] += length
                    outer.bytes[1] += len(data)
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        """Returns (requests, bytes sent, bytes received) since the last call."""
        out = (sum(self.counts.values()), self.bytes[0], self.bytes[1])
        self.counts.clear()
        self.bytes[0] = self.bytes[1] = 0
        return out


def journaled_disk(work):
    """Mounts a loop-backed ext4 with its journal under `work`; returns its path, or
    None where mounting is not allowed."""
    image, mount = work / "ext4.img", work / "ext4"
    mount.mkdir(exist_ok=True)
    subprocess.run(["truncate", "-s", "3G", str(image)], check=True)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True).returncode == 0
    return mount if mounted else None


def bench_packs_on(disk, label, src, mreg, env, report):
    """The small-file rows on one disk: first push, no-op re-push, push to a folder
    remote, and clone + pull from it, mreg beside restic, git-lfs and the copy."""

    def mreg_cmd(reg, *args):
        return [mreg, "--registry", str(reg), "--no-progress", "-q", *args]

    peers = {name: shutil.which(name) is not None for name in ("restic", "git-lfs")}
    renv = dict(env, RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=str(disk / "restic-cache"))
    report.heading(f"-- packs on {label}: {sum(1 for _ in src.rglob('*.dat'))} small files")
    n = iter(range(1_000_000))

    def cp_sync():
        dst = disk / "cp-dst"
        shutil.rmtree(dst, ignore_errors=True)
        return sh("sh", "-c", f"cp -r '{src}' '{dst}' && sync")

    def fresh_push():
        reg = fresh_push.reg = disk / f"reg-{next(n)}"
        subprocess.run([mreg, "init", str(reg), "-q"], check=True, env=env)
        return sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)

    def restic_backup():
        repo = disk / f"restic-{next(n)}"
        subprocess.run(["restic", "init", "-q", "-r", str(repo)], check=True, env=renv,
                       stdout=subprocess.DEVNULL)
        restic_backup.repo = repo
        return sh("restic", "-q", "-r", str(repo), "backup", str(src), env=renv)

    base, ours, ratio, rss = paired(cp_sync, fresh_push)
    report.row("cp -r && sync", base)
    report.row("mreg push (fresh registry)", ours, f"{ratio:.2f}x cp -r && sync; peak RSS {rss:.0f} MiB")
    report.target(f"packs ({label}): first push <= 1.2x cp -r && sync", ratio <= 1.2, f"{ratio:.2f}x")
    if peers["restic"]:
        r_s, ours, r_ratio, _ = paired(restic_backup, fresh_push)
        report.row("restic backup (fresh repository)", r_s)
        report.row("mreg push (fresh registry), paired with restic", ours, f"{r_ratio:.2f}x restic")

    reg = fresh_push.reg
    time.sleep(2.1)  # the stat cache trusts stamps older than 2 s
    sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)
    noop = lambda: sh(*mreg_cmd(reg, "push", str(src), "--model", "m"), env=env)
    if peers["git-lfs"]:
        repo = disk / "lfs"
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(src, repo)
        genv = dict(env, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
                    GIT_COMMITTER_EMAIL="b@b")
        for cmd in (["git", "init", "-q"], ["git", "lfs", "install", "--local"],
                    ["git", "lfs", "track", "*.dat"], ["git", "add", "-A"],
                    ["git", "commit", "-q", "-m", "data"]):
            subprocess.run(cmd, cwd=repo, env=genv, check=True, stdout=subprocess.DEVNULL)
        time.sleep(2.1)
        lfs_noop = lambda: sh("git", "-C", str(repo), "add", "-A", env=genv)
        lfs_noop()
        g_s, ours, g_ratio, _ = paired(lfs_noop, noop, n=5)
        report.row("git add -A, nothing changed (git-lfs)", g_s)
        report.row("mreg push, nothing changed", ours, f"{g_ratio:.2f}x git-lfs")
        report.target(f"packs ({label}): no-op re-push <= git-lfs", g_ratio <= 1.0, f"{g_ratio:.2f}x")
    else:
        report.row("mreg push, nothing changed", median(noop, 5)[0])

    share = disk / "share"

    def to_remote():
        shutil.rmtree(share, ignore_errors=True)
        (reg / ".mreg" / "remotes.toml").unlink(missing_ok=True)
        shutil.rmtree(reg / ".mreg" / "cache" / "remotes", ignore_errors=True)
        subprocess.run(mreg_cmd(reg, "init", str(share)), check=True, env=env)
        subprocess.run(mreg_cmd(reg, "remote", "add", "share", str(share)), check=True, env=env)
        return sh(*mreg_cmd(reg, "sync", "share"), env=env)

    base, ours, ratio, _ = paired(cp_sync, to_remote)
    report.row("mreg sync to an empty folder remote", ours, f"{ratio:.2f}x cp -r && sync")

    def clone_pull():
        dst = disk / "clone"
        shutil.rmtree(dst, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([mreg, "-q", "--no-progress", "clone", str(share), str(dst)], check=True, env=env)
        subprocess.run(mreg_cmd(dst / ".mreg", "pull", "m@1", "--to", str(dst / "out")),
                       check=True, env=env)
        subprocess.run(["sync"], check=True)
        return time.perf_counter() - start, 0

    base, ours, ratio, _ = paired(cp_sync, clone_pull)
    report.row("mreg clone + pull from the folder remote", ours, f"{ratio:.2f}x cp -r && sync")
    same = snapshot(disk / "clone" / "out") == snapshot(src)
    report.check(f"packs ({label}): clone + pull is byte-identical", same, "")
    if peers["restic"]:
        repo = restic_backup.repo

        def restore():
            dst = disk / "restored"
            shutil.rmtree(dst, ignore_errors=True)
            start = time.perf_counter()
            subprocess.run(["restic", "-q", "-r", str(repo), "restore", "latest", "--target", str(dst)],
                           check=True, env=renv, stdout=subprocess.DEVNULL)
            subprocess.run(["sync"], check=True)
            return time.perf_counter() - start, 0

        r_s, ours, r_ratio, _ = paired(restore, clone_pull)
        report.row("restic restore from its repository", r_s)
        report.row("mreg clone + pull, paired with restic", ours, f"{r_ratio:.2f}x restic")
        report.target(f"packs ({label}): clone + pull <= restic restore", r_ratio <= 1.0, f"{r_ratio:.2f}x")
    for p in list(disk.glob("reg-*")) + list(disk.glob("restic-*")) + [share, disk / "clone", disk / "lfs",
                                                                      disk / "restored", disk / "cp-dst"]:
        shutil.rmtree(p, ignore_errors=True)


def snapshot(root):
    """Returns every file below `root` with its bytes' hash, by relative path."""
    import hashlib
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def bench_packs(work, mreg, env, report):
    """Small files in packs: the rows of `bench_packs_on` on the work folder's disk and
    on a loop-mounted journaled ext4, then the requests a sync of them to a bucket on
    the local S3 server makes, against `aws s3 sync` of the same folder."""
    src = work / "packs-small"
    make_small(src)
    bench_packs_on(work, "the work disk", src, mreg, env, report)
    disk = journaled_disk(work)
    if disk is None:
        report.heading("(no loop-mounted ext4: mounting is not allowed here)")
    else:
        try:
            local = disk / "small"
            shutil.copytree(src, local)
            bench_packs_on(disk, "a journaled ext4 (loop)", local, mreg, env, report)
        finally:
            subprocess.run(["umount", str(disk)], check=False)
    port, server = start_s3()
    proxy = CountingProxy(port)
    s3env = dict(env, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                 AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", MREG_CACHE_DIR=str(work / "packs-cache"))
    import boto3
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    reg = work / "packs-reg"
    subprocess.run([mreg, "init", str(reg), "-q"], check=True, env=env)
    subprocess.run([mreg, "--registry", str(reg), "-q", "push", str(src), "--model", "m"], check=True, env=env)
    n = iter(range(1_000_000))

    def mreg_sync():
        bucket = f"packs-{next(n)}"
        client.create_bucket(Bucket=bucket)
        (reg / ".mreg" / "remotes.toml").unlink(missing_ok=True)
        shutil.rmtree(reg / ".mreg" / "cache" / "remotes", ignore_errors=True)
        subprocess.run([mreg, "--registry", str(reg), "-q", "remote", "add", "b", f"s3://{bucket}/reg"],
                       check=True, env=s3env)
        proxy.take()
        out = sh(mreg, "--registry", str(reg), "-q", "sync", "b", env=s3env)
        mreg_sync.last = proxy.take()
        return out

    def aws_sync():
        bucket = f"packs-{next(n)}"
        client.create_bucket(Bucket=bucket)
        proxy.take()
        out = sh("aws", "s3", "sync", "--quiet", str(src), f"s3://{bucket}/plain", env=s3env)
        aws_sync.last = proxy.take()
        return out

    a_s, ours, ratio, rss = paired(aws_sync, mreg_sync)
    (m_req, m_up, m_down), (a_req, a_up, _) = mreg_sync.last, aws_sync.last
    report.row("aws s3 sync of the small files to an empty bucket", a_s,
               f"{a_req} requests, {a_up / MIB:.0f} MiB sent")
    report.row("mreg sync of them to an empty bucket", ours,
               f"{ratio:.2f}x aws s3 sync; {m_req} requests, {m_up / MIB:.0f} MiB sent; peak RSS {rss:.0f} MiB")
    report.target("packs: S3 requests of a sync of 5,000 small files < 100", m_req < 100, f"{m_req}")
    clone = work / "packs-clone"
    url = json.loads(capture([mreg, "--registry", str(reg), "--json", "remote", "list"], s3env))[0]["url"]
    proxy.take()
    start = time.perf_counter()
    subprocess.run([mreg, "-q", "--no-progress", "clone", url, str(clone)], check=True, env=s3env)
    seconds = time.perf_counter() - start
    c_req, _, c_down = proxy.take()
    report.row("mreg clone of that bucket", seconds, f"{c_req} requests, {c_down / MIB:.0f} MiB received")
    server.stdin.close()
    server.wait()
    shutil.rmtree(src)

# ---- remote: the model folder to a folder remote and to a bucket ----

def bench_remote(work, mreg, env, report):
    """The model folder (1.34 GB) sent to a folder remote, whole and after a change of
    one weight file and the config, against `cp -r && sync` and git-lfs pushing to a
    local bare repository; then sent to a bucket on the local S3 server against
    `aws s3 sync`, with requests, bytes and peak memory."""
    src = work / "remote-model"
    make_model(src)
    total = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    report.heading(f"-- remote: the model folder, {total / 1e9:.2f} GB")
    reg = work / "remote-reg"
    subprocess.run([mreg, "init", str(reg), "-q"], check=True, env=env)
    subprocess.run([mreg, "--registry", str(reg), "-q", "push", str(src), "--model", "m"], check=True, env=env)
    share = work / "remote-share"

    def cp_sync():
        dst = work / "remote-cp"
        shutil.rmtree(dst, ignore_errors=True)
        return sh("sh", "-c", f"cp -r '{src}' '{dst}' && sync")

    def fresh_share():
        shutil.rmtree(share, ignore_errors=True)
        (reg / ".mreg" / "remotes.toml").unlink(missing_ok=True)
        shutil.rmtree(reg / ".mreg" / "cache" / "remotes", ignore_errors=True)
        subprocess.run([mreg, "-q", "init", str(share)], check=True, env=env)
        subprocess.run([mreg, "--registry", str(reg), "-q", "remote", "add", "share", str(share)],
                       check=True, env=env)

    def full_sync():
        fresh_share()
        return sh(mreg, "--registry", str(reg), "-q", "sync", "share", env=env)

    base, ours, ratio, rss = paired(cp_sync, full_sync)
    report.row("cp -r && sync of the model folder", base)
    report.row("mreg sync to an empty folder remote", ours, f"{ratio:.2f}x cp -r && sync; peak RSS {rss:.0f} MiB")
    report.target("remote: full sync to a folder remote <= 1.2x cp -r && sync", ratio <= 1.2, f"{ratio:.2f}x")

    # An incremental push: one weight file and the config changed, pushed and synced.
    genv = dict(env, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
                GIT_COMMITTER_EMAIL="b@b")
    lfs = shutil.which("git-lfs") is not None
    repo, bare = work / "remote-lfs", work / "remote-lfs.git"
    if lfs:
        shutil.copytree(src, repo)
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, env=genv)
        for cmd in (["git", "init", "-q"], ["git", "lfs", "install", "--local"],
                    ["git", "lfs", "track", "*.safetensors", "*.bin"], ["git", "add", "-A"],
                    ["git", "commit", "-q", "-m", "v1"], ["git", "remote", "add", "origin", f"file://{bare}"],
                    ["git", "push", "-q", "origin", "HEAD:main"]):
            subprocess.run(cmd, cwd=repo, env=genv, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    fresh_share()
    subprocess.run([mreg, "--registry", str(reg), "-q", "sync", "share"], check=True, env=env)
    seed = iter(range(10, 1000))

    def change(folder):
        n = next(seed)
        write_random(folder / "model-00002.safetensors", 512 * MIB, n)
        (folder / "config.json").write_text(json.dumps({"hidden_size": 4096, "seed": n}) + "\n")

    def lfs_push():
        change(repo)
        subprocess.run(["git", "add", "-A"], cwd=repo, env=genv, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "next"], cwd=repo, env=genv, check=True)
        start = time.perf_counter()
        subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=repo, env=genv, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["sync"], check=True)
        return time.perf_counter() - start, 0

    def mreg_send():
        change(src)
        subprocess.run([mreg, "--registry", str(reg), "-q", "push", str(src), "--model", "m"], check=True, env=env)
        start = time.perf_counter()
        subprocess.run([mreg, "--registry", str(reg), "-q", "sync", "share"], check=True, env=env)
        return time.perf_counter() - start, 0

    if lfs:
        l_s, ours, l_ratio, _ = paired(lfs_push, mreg_send)
        report.row("git push of a commit changing 1 weight + config (git-lfs, then sync)", l_s)
        report.row("mreg sync of a version changing the same", ours, f"{l_ratio:.2f}x git-lfs")
        report.target("remote: incremental push to a folder remote <= git-lfs", l_ratio <= 1.0, f"{l_ratio:.2f}x")

    # A bucket, through a proxy counting requests.
    port, server = start_s3()
    proxy = CountingProxy(port)
    s3env = dict(env, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                 AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", MREG_CACHE_DIR=str(work / "remote-cache"))
    import boto3
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    n = iter(range(1_000_000))
    one = work / "remote-one"
    subprocess.run([mreg, "init", str(one), "-q"], check=True, env=env)
    subprocess.run([mreg, "--registry", str(one), "-q", "push", str(src), "--model", "m"], check=True, env=env)

    def mreg_bucket():
        bucket = f"remote-{next(n)}"
        client.create_bucket(Bucket=bucket)
        (one / ".mreg" / "remotes.toml").unlink(missing_ok=True)
        shutil.rmtree(one / ".mreg" / "cache" / "remotes", ignore_errors=True)
        subprocess.run([mreg, "--registry", str(one), "-q", "remote", "add", "b", f"s3://{bucket}/reg"],
                       check=True, env=s3env)
        proxy.take()
        out = sh(mreg, "--registry", str(one), "-q", "sync", "b", env=s3env)
        mreg_bucket.last = proxy.take()
        return out

    def aws_bucket():
        bucket = f"remote-{next(n)}"
        client.create_bucket(Bucket=bucket)
        proxy.take()
        out = sh("aws", "s3", "sync", "--quiet", str(src), f"s3://{bucket}/plain", env=s3env)
        aws_bucket.last = proxy.take()
        aws_bucket.rss = out[1]
        return out

    a_s, ours, ratio, rss = paired(aws_bucket, mreg_bucket)
    (m_req, m_up, _), (a_req, a_up, _) = mreg_bucket.last, aws_bucket.last
    report.row("aws s3 sync of the model folder to an empty bucket", a_s,
               f"{a_req} requests, {a_up / MIB:.0f} MiB sent; peak RSS {aws_bucket.rss:.0f} MiB")
    report.row("mreg sync of it to an empty bucket", ours,
               f"{ratio:.2f}x aws s3 sync; {m_req} requests, {m_up / MIB:.0f} MiB sent; peak RSS {rss:.0f} MiB")
    report.target("remote: sync to a bucket within 1.1x aws s3 sync", ratio <= 1.1, f"{ratio:.2f}x")
    report.target("remote: peak RSS of a sync to a bucket <= 64 MiB", rss <= 64, f"{rss:.0f} MiB")
    server.stdin.close()
    server.wait()
    for p in (src, reg, share, one, repo, bare, work / "remote-cp"):
        shutil.rmtree(p, ignore_errors=True)

# ---- runs: query and logging over synthetic runs ----

QUERY = ["runs", "--where", "metrics.acc > 0.8 and params.lr < 0.01", "--sort", "-metrics.acc",
         "--limit", "20"]
LRS = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]


def spawn(argv, env):
    """Runs a command with stdout and stderr to /dev/null; returns wall seconds.

    posix_spawn + wait4, nothing else, so a few-millisecond command is not swamped by
    Python's subprocess machinery; /bin/true spawned this way is the floor."""
    actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        sys.exit(f"failed (exit {os.waitstatus_to_exitcode(status)}): {' '.join(argv)}\n{proc.stderr}")
    return seconds


def capture(argv, env):
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed (exit {proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    return proc.stdout


def toml_value(v):
    """Returns a param or metric value as mreg's TOML writer spells it (checked against a
    record mreg wrote, in run_templates)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)  # every value used here is in the range where repr matches Rust
    return json.dumps(v)


def toml_table(name, values):
    return f"[{name}]\n" + "".join(f"{k} = {toml_value(values[k])}\n" for k in sorted(values))


def cli_value(v):
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def synthetic_run(rng, i):
    """Returns (experiment, params, metrics) of run i: 10 typed params, 10 final metrics."""
    lr = rng.choice(LRS)
    params = {
        "lr": lr, "batch_size": rng.choice([16, 32, 64, 128]), "epochs": rng.randint(1, 50),
        "optimizer": rng.choice(["adam", "adamw", "sgd"]), "dropout": rng.choice([0.0, 0.1, 0.2, 0.3]),
        "weight_decay": rng.choice([0.0, 0.01, 0.05]), "layers": rng.choice([2, 4, 8, 12]),
        "amp": rng.random() < 0.5, "scheduler": rng.choice(["cosine", "linear", "none"]),
        "seed": rng.randint(0, 99999),
    }
    acc = round(rng.uniform(0.5, 0.95), 6)
    metrics = {
        "acc": acc, "loss": round(rng.uniform(0.1, 2.0), 6), "f1": round(acc - rng.uniform(0, 0.05), 6),
        "precision": round(rng.uniform(0.5, 0.99), 6), "recall": round(rng.uniform(0.5, 0.99), 6),
        "auc": round(rng.uniform(0.6, 0.99), 6), "val_acc": round(acc - rng.uniform(0, 0.1), 6),
        "val_loss": round(rng.uniform(0.1, 2.5), 6), "train_time_s": round(rng.uniform(30, 9000), 3),
        "throughput": round(rng.uniform(100, 50000), 2),
    }
    return f"exp-{i % 5}", params, metrics


def replace_line(text, key, value, count=1):
    new, n = re.subn(rf"^{key} = .*$", lambda _: f"{key} = {value}", text, count=count, flags=re.M)
    if n == 0:
        sys.exit(f"mreg's run files changed shape: no `{key} = ` line in\n{text}")
    return new


def replace_table(text, name, table):
    """Replaces the `[name]` table (up to the next blank line or the end) with `table`."""
    new, n = re.subn(rf"^\[{re.escape(name)}\]\n(?:[^\n]+\n)*", lambda _: table, text, count=1, flags=re.M)
    if n == 0:
        sys.exit(f"mreg's run files changed shape: no [{name}] table in\n{text}")
    return new


def run_templates(work, mreg, env):
    """Has mreg record one real run (10 params, then 10 final metrics logged, then its end)
    and returns its three files as templates: (run.toml, metrics event, end event).

    The run starts in the mreg checkout, so its record carries a [source] like a real
    training run's. The script's own TOML spelling of params and metrics is checked
    against what mreg wrote."""
    reg = work / "runs-template"
    capture([mreg, "init", str(reg), "-q"], env)
    _, params, metrics = synthetic_run(random.Random(0), 0)
    cmd = [mreg, "--registry", str(reg), "-q", "--json", "run", "--experiment", "exp-0"]
    for k, v in params.items():
        cmd += ["--param", f"{k}={cli_value(v)}"]
    run_id = json.loads(subprocess.run(cmd + ["--", "true"], env=env, cwd=REPO, check=True,
                                       capture_output=True, text=True).stdout)["run"]
    cmd = [mreg, "--registry", str(reg), "-q", "log", "--run", run_id]
    for k, v in metrics.items():
        cmd += ["--metric", f"{k}={v}"]
    capture(cmd, env)
    run_dir = reg / ".mreg" / "runs" / run_id
    record = (run_dir / "run.toml").read_text()
    events = [p.read_text() for p in sorted((run_dir / "log").iterdir())]
    ends = [e for e in events if "\n[end]\n" in e]
    logged = [e for e in events if "\n[metrics]\n" in e]
    if len(ends) != 1 or len(logged) != 1 or len(events) != 2:
        sys.exit(f"expected one end event and one metrics event, got:\n{events}")
    for text, name, values in [(record, "params", params), (logged[0], "metrics", metrics)]:
        if toml_table(name, values) not in text:
            sys.exit(f"this script spells [{name}] differently from mreg:\n{toml_table(name, values)}\nvs\n{text}")
    shutil.rmtree(reg)
    return record, logged[0], ends[0]


def rfc3339(t, like):
    """Returns time t as RFC 3339 in UTC, with as many decimals of a second as `like`, a
    time mreg wrote in the same field (seconds or milliseconds)."""
    digits = len(m.group(1)) if (m := re.search(r"\.(\d+)Z$", like)) else 0
    seconds, fraction = divmod(int(t * 10**digits), 10**digits)  # truncated, as mreg does
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return text + (f".{fraction:0{digits}}" if digits else "") + "Z"


def field(text, key):
    """Returns the first `key = "…"` string value in mreg's TOML."""
    m = re.search(rf'^{key} = "([^"]*)"$', text, flags=re.M)
    if not m:
        sys.exit(f"mreg's run files changed shape: no `{key} = \"…\"` line in\n{text}")
    return m.group(1)


def make_runs(reg, n, templates, env, mreg):
    """Writes n finished runs into a new registry at `reg`, as mreg itself lays them out:
    runs/ID/run.toml as the run started, then log/ holding one metrics event and the end
    event. Returns {id: (start, params, metrics)} to check mreg's answers against."""
    record_tpl, metrics_tpl, end_tpl = templates
    capture([mreg, "init", str(reg), "-q"], env)
    runs_dir = reg / ".mreg" / "runs"
    rng = random.Random(n)
    base = int(time.time()) - n * 60 - 86400
    truth = {}
    for i in range(n):
        run_id = f"{rng.getrandbits(64):016x}"
        while run_id in truth:
            run_id = f"{rng.getrandbits(64):016x}"
        experiment, params, metrics = synthetic_run(rng, i)
        t0 = base + i * 60 + rng.randint(0, 999) / 1000
        duration = round(rng.uniform(30, 3000), 6)
        start = rfc3339(t0, field(record_tpl, "start"))
        logged_at = rfc3339(t0 + duration - 1, field(metrics_tpl, "time"))
        end = rfc3339(t0 + duration, field(end_tpl, "time"))
        truth[run_id] = (start, params, metrics)

        record = replace_line(record_tpl, "id", f'"{run_id}"')
        record = replace_line(record, "experiment", f'"{experiment}"')
        record = replace_line(record, "start", f'"{start}"')
        record = replace_line(record, "pid", str(rng.randint(1000, 4_000_000)))
        record = replace_table(record, "params", toml_table("params", params))
        logged = replace_line(metrics_tpl, "run", f'"{run_id}"')
        logged = replace_line(logged, "time", f'"{logged_at}"')
        logged = replace_table(logged, "metrics", toml_table("metrics", metrics))
        ended = replace_line(end_tpl, "run", f'"{run_id}"')
        ended = replace_line(ended, "time", f'"{end}"', count=0)
        ended = replace_line(ended, "duration_s", repr(duration))

        log = runs_dir / run_id / "log"
        log.mkdir(parents=True)
        (runs_dir / run_id / "run.toml").write_text(record)
        for at, text in [(t0 + duration - 1, logged), (t0 + duration, ended)]:
            (log / f"{int(at * 1e9):020}-{rng.getrandbits(32):08x}.toml").write_text(text)
    return truth


def expected_top(truth, limit=20):
    """Returns the ids the benchmark query should print, computed here: acc > 0.8 and
    lr < 0.01, by acc descending, then newest start, then id (mreg's tie-breaks)."""
    hits = [(m["acc"], start, run_id) for run_id, (start, p, m) in truth.items()
            if m["acc"] > 0.8 and p["lr"] < 0.01]
    hits.sort(key=lambda h: h[2])
    hits.sort(key=lambda h: (h[0], h[1]), reverse=True)
    return [h[2] for h in hits[:limit]]


def typed(values):
    """Returns a dict with each value's type beside it: 1, 1.0 and True compare unequal."""
    return {k: (type(v).__name__, v) for k, v in values.items()}


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_runs(work, mreg, env, report):
    """Times `mreg runs` over 1,000 and 10,000 synthetic runs, and `mreg log` per call."""
    def cmd(reg, *args):
        return [mreg, "--registry", str(reg), "--no-progress", "-q", *args]

    print("# generating runs (1,000 and 10,000)", file=sys.stderr)
    templates = run_templates(work, mreg, env)
    regs = {}
    for n in (1_000, 10_000):
        reg = work / f"runs-{n}"
        regs[n] = (reg, make_runs(reg, n, templates, env, mreg))
    subprocess.run(["sync"], check=True)
    generated = time.time()

    # The synthetic registries must read as mreg's own before anything is timed.
    for n, (reg, truth) in regs.items():
        index = reg / ".mreg" / "cache" / "runs-index.json"
        index.unlink(missing_ok=True)
        proc = subprocess.run(cmd(reg, "--json", "runs"), env=env, capture_output=True, text=True)
        listed = json.loads(proc.stdout) if proc.returncode == 0 else []
        report.check(f"runs {n}: mreg reads every synthetic run",
                     proc.returncode == 0 and len(listed) == n and not proc.stderr.strip(),
                     f"{len(listed)} of {n} listed, exit {proc.returncode}"
                     + (f", stderr: {proc.stderr.strip()[:300]}" if proc.stderr.strip() else ""))
        one = json.loads(capture(cmd(reg, "--json", "runs", "--limit", "1"), env))
        run_id = one[0]["id"] if one else next(iter(truth))
        shown = json.loads(capture(cmd(reg, "--json", "show", run_id), env))
        start, params, metrics = truth[run_id]
        same = (typed(shown["params"]) == typed(params) and shown["metrics"] == metrics
                and shown["start"] == start and shown["status"] == "finished")
        report.check(f"runs {n}: mreg show {run_id} gives the params and metrics written", same,
                     "typed params, metrics, start and status as written" if same else
                     f"got params {shown.get('params')}, metrics {shown.get('metrics')}")
        top = [r["id"] for r in json.loads(capture(cmd(reg, "--json", *QUERY), env))]
        want = expected_top(truth)
        report.check(f"runs {n}: the query returns the expected top 20", top == want,
                     f"{len(top)} ids, as computed independently" if top == want else
                     f"got {top[:3]}…, expected {want[:3]}…")

    # Index entries are trusted only once the runs' folders are 2 s older than the index.
    time.sleep(max(0.0, generated + 2.1 - time.time()))

    figures = {}
    for n in (1_000, 10_000):
        reg, _ = regs[n]
        index = reg / ".mreg" / "cache" / "runs-index.json"
        query = cmd(reg, *QUERY)

        def cold():
            index.unlink(missing_ok=True)
            return spawn(query, env)

        cold_s = statistics.median(cold() for _ in range(5))
        spawn(query, env)  # warm-up: the index now trusts every entry
        before = index.stat().st_mtime_ns
        warm_s = statistics.median(spawn(query, env) for _ in range(11))
        json_s = statistics.median(spawn(cmd(reg, "--json", *QUERY), env) for _ in range(11))
        untouched = index.stat().st_mtime_ns == before
        report.check(f"runs {n}: warm queries read the index without rewriting it", untouched,
                     "index unchanged" if untouched else "index rewritten: warm figures are not warm")
        figures[n] = (cold_s, warm_s, json_s)

    files = sum(1 for _ in (regs[10_000][0] / ".mreg" / "runs").rglob("*.toml"))
    report.heading(f"-- runs: 10 params + 10 metrics each, 5 experiments ({files:,} files at 10k)")
    report.heading(f"   query: mreg {' '.join(QUERY[:1] + [repr(a) if ' ' in a else a for a in QUERY[1:]])}")
    cold1k, warm1k, json1k = figures[1_000]
    cold10k, warm10k, json10k = figures[10_000]
    report.row("mreg runs, 1k runs, cold (no index)", cold1k,
               f"{cold1k / 1.05:.2f}x MLflow file store search_runs (1.05 s)")
    report.row("mreg runs, 1k runs, warm", warm1k, f"{warm1k / 0.04:.2f}x MLflow SQLite search_runs (0.04 s)")
    report.row("mreg runs --json, 1k runs, warm", json1k)
    report.row("mreg runs, 10k runs, cold (no index)", cold10k)
    report.row("mreg runs, 10k runs, warm", warm10k)
    report.row("mreg runs --json, 10k runs, warm", json10k)
    report.target("runs: query over 10k runs, warm, < 200 ms", warm10k < 0.200, f"{warm10k * 1000:.0f} ms")

    # Logging, into the 10k registry (where a user's runs would be).
    reg, _ = regs[10_000]

    def new_run():
        out = capture(cmd(reg, "--json", "run", "--experiment", "bench", "--", "true"), env)
        return json.loads(out)["run"]

    def series_count(run_id, key):
        shown = json.loads(capture(cmd(reg, "--json", "show", run_id), env))
        return shown.get("series", {}).get(key, {}).get("count", 0)

    run_id = new_run()
    true_s, log_s = [], []
    for i in range(200):  # alternate, so drift on a shared machine hits both alike
        true_s.append(spawn(["/bin/true"], env))
        log_s.append(spawn(cmd(reg, "log", "--run", run_id, "--metric", f"loss={1 / (i + 1):.6f}",
                               "--step", str(i)), env))
    true_med, log_med, log_p90 = statistics.median(true_s), statistics.median(log_s), percentile(log_s, 0.9)
    got = series_count(run_id, "loss")
    report.check("runs: 200 sequential mreg log calls all recorded", got == 200, f"{got} of 200 points")

    _, params, metrics = synthetic_run(random.Random(1), 1)
    param_args = [a for k, v in params.items() for a in ("--param", f"{k}={cli_value(v)}")]
    metric_args = [a for k, v in metrics.items() for a in ("--metric", f"{k}={v}")]
    batch_s = statistics.median(
        spawn(cmd(reg, "log", "--run", run_id, *param_args, *metric_args), env) for _ in range(21))
    # MLflow's 11 ms creates the run too: so does this, with a child logging the metrics.
    whole = cmd(reg, "run", "--experiment", "bench", *param_args, "--", *cmd(reg, "log", *metric_args))
    whole_s = statistics.median(spawn(whole, env) for _ in range(11))

    report.row("/bin/true (process spawn floor)", true_med)
    report.row("mreg log --metric loss=V --step i, median of 200", log_med,
               f"{log_med / true_med:.1f}x /bin/true; p90 {log_p90 * 1000:.1f} ms")
    report.row("mreg log, 10 params + 10 metrics in one call", batch_s,
               f"{batch_s / 0.011:.2f}x MLflow file store log of a run (11 ms)")
    report.row("mreg run --param x10 -- mreg log --metric x10", whole_s,
               f"{whole_s / 0.011:.2f}x MLflow file store log of a run (11 ms)")
    report.target("runs: mreg log median < 10 ms", log_med < 0.010,
                  f"{log_med * 1000:.1f} ms (p90 {log_p90 * 1000:.1f} ms)")

    # Concurrent logging: 4 writers x 50 calls into one run, all at once.
    run_id = new_run()
    loop = " ".join(f"'{a}'" for a in cmd(reg, "log", "--run", run_id))
    writers = [f'fail=0; for i in $(seq 0 49); do {loop} --metric conc=$i.{w} --step $(({w} * 50 + i)) '
               f'>/dev/null 2>&1 || fail=$((fail + 1)); done; exit $fail' for w in range(4)]
    start = time.perf_counter()
    procs = [subprocess.Popen(["sh", "-c", w], env=env) for w in writers]
    failures = sum(p.wait() for p in procs)
    wall = time.perf_counter() - start
    got = series_count(run_id, "conc")
    shown = json.loads(capture(cmd(reg, "--json", "show", run_id, "--series", "conc"), env))
    steps = sorted(p["step"] for p in shown.get("series", {}).get("conc", {}).get("points", []))
    ok = failures == 0 and got == 200 and steps == list(range(200))
    report.row("mreg log, 4 processes x 50 calls into one run (wall)", wall,
               f"{wall / 200 * 1000:.1f} ms per call overall; {got} of 200 points arrived")
    report.check("runs: 4 concurrent loggers x 50 calls, every point recorded", ok,
                 f"{got} of 200 points, {len(set(steps))} distinct steps, {failures} failed calls")


def bench_stages(work, mreg, env, report):
    """Times stage moves: one promotion with a gate (against /bin/true), 4 processes
    promoting at once, and reading a long history; checks that every success landed."""
    reg = work / "stages"
    capture([mreg, "init", str(reg), "-q"], env)
    out = reg / "out"
    out.mkdir()

    def cmd(*args):
        return [mreg, "--registry", str(reg), "-q", *args]

    versions = 20
    for v in range(1, versions + 1):
        (out / "weights.bin").write_bytes(os.urandom(4096))
        capture(cmd("push", str(out), "--model", "m", "--metric", f"acc=0.{v:02d}"), env)

    true_s, promote_s = [], []
    for i in range(200):  # alternate, so drift on a shared machine hits both alike
        true_s.append(spawn(["/bin/true"], env))
        promote_s.append(spawn(cmd("promote", f"m@{i % versions + 1}", "production",
                                   "--allow-downgrade", "--gate", "acc>=0.01"), env))
    true_med, promote_med = statistics.median(true_s), statistics.median(promote_s)
    report.row("/bin/true (process spawn floor)", true_med)
    report.row("mreg promote with one gate, median of 200", promote_med,
               f"{promote_med / true_med:.1f}x /bin/true; p90 {percentile(promote_s, 0.9) * 1000:.1f} ms")

    # Concurrency: 4 processes x 25 promotions of different versions, all at once.
    before = len(json.loads(capture(cmd("--json", "history", "m"), env)))
    loop = " ".join(f"'{a}'" for a in cmd("promote"))
    # Count the moves: promoting the version production already holds succeeds too,
    # without writing a state.
    writers = [f'ok=0; for i in $(seq 1 25); do {loop} --json m@$(( (i + {w} * 5) % {versions} + 1 )) '
               f'production --allow-downgrade --wait 60 2>/dev/null | grep -q \'"result": "moved"\' '
               f'&& ok=$((ok + 1)); done; echo $ok' for w in range(4)]
    start = time.perf_counter()
    procs = [subprocess.Popen(["sh", "-c", w], env=env, stdout=subprocess.PIPE, text=True) for w in writers]
    succeeded = sum(int(p.communicate()[0].strip() or 0) for p in procs)
    wall = time.perf_counter() - start
    history = json.loads(capture(cmd("--json", "history", "m"), env))
    landed = len(history) - before
    serial = all(newer["previous"] == older["id"] and newer["moves"][0]["from"] == older["stages"]["production"]
                 for newer, older in zip(history, history[1:]) if newer["moves"])
    report.row("mreg promote, 4 processes x 25 at once (wall)", wall,
               f"{wall / 100 * 1000:.1f} ms per promotion overall; {succeeded} moved production")
    report.check("stages: 4 concurrent promoters, each success in the chain once, in a serial order",
                 landed == succeeded and serial, f"{landed} states for {succeeded} successes; serial: {serial}")

    hist_s = statistics.median(spawn(cmd("--json", "history", "m"), env) for _ in range(11))
    show_s = statistics.median(spawn(cmd("show", "m@production"), env) for _ in range(21))
    report.row(f"mreg history --json, {len(history)} states", hist_s)
    report.row("mreg show m@production (resolve through the stage)", show_s,
               f"{show_s / true_med:.1f}x /bin/true")
    report.target("stages: promote median < 20 ms", promote_med < 0.020, f"{promote_med * 1000:.1f} ms")


def bench_env(work, mreg, env, report):
    """Times the capture of a run's Python packages and lock files: `mreg run -- true` in a
    project with a 300-package venv and five lock files, alternated with a bare one."""
    reg = work / "env-registry"
    capture([mreg, "init", str(reg), "-q"], env)
    project, bare = work / "env-project", work / "env-bare"
    project.mkdir()
    bare.mkdir()
    venv = project / ".venv"
    site = venv / "lib/python3.11/site-packages"
    for i in range(300):
        (site / f"package_{i}-1.{i}.0.dist-info").mkdir(parents=True)
        (site / f"package_{i}").mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.9\n")
    rng = random.Random(7)
    (project / "uv.lock").write_text("".join(f"[[package]]\nname = \"p{i}\"\nversion = \"{rng.random()}\"\n"
                                             for i in range(20000))[: 1 << 20])
    for name in ["requirements.txt", "requirements-dev.txt", "poetry.lock", "environment.yml"]:
        (project / name).write_text("".join(f"package-{i}==1.{i}.0\n" for i in range(300)))

    def run_in(folder, extra):
        run_env = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV", "MREG_PYTHON")}
        run_env.update(extra)
        argv = [mreg, "--registry", str(reg), "-q", "run", "--", "/bin/true"]
        start = time.perf_counter()
        proc = subprocess.run(argv, env=run_env, cwd=folder, capture_output=True)
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr.decode()}")
        return time.perf_counter() - start

    with_env = {"VIRTUAL_ENV": str(venv)}
    bare_s, full_s = [], []
    for _ in range(40):  # alternate, so drift on a shared machine hits both alike
        bare_s.append(run_in(bare, {"MREG_PYTHON": "none"}))
        full_s.append(run_in(project, with_env))
    # A lock file the registry has not seen: its content is masked and stored anew.
    changed_s = []
    for i in range(10):
        with open(project / "uv.lock", "a") as lock:
            lock.write(f"# change {i}\n")
        bare_s.append(run_in(bare, {"MREG_PYTHON": "none"}))
        changed_s.append(run_in(project, with_env) - bare_s[-1])
    bare_s = bare_s[:40]
    bare_med, full_med = statistics.median(bare_s), statistics.median(full_s)
    added = statistics.median(f - b for b, f in zip(bare_s, full_s))
    report.row("mreg run -- true, no Python environment, no lock files (median of 40)", bare_med)
    report.row("mreg run -- true, 300-package venv, 5 lock files (1 MiB uv.lock)", full_med,
               f"+{added * 1000:.1f} ms (median of paired differences)")
    report.row("the same, the 1 MiB uv.lock changed before each run (median of 10)", bare_med + statistics.median(changed_s),
               f"+{statistics.median(changed_s) * 1000:.1f} ms: masked and stored anew")
    newest = json.loads(capture([mreg, "--registry", str(reg), "--json", "runs", "--limit", "1"], env))[0]["id"]
    shown = json.loads(capture([mreg, "--registry", str(reg), "--json", "show", newest], env))
    python = shown["environment"].get("python") or {}
    stored = [l for l in shown["environment"].get("lockfiles", []) if l.get("stored")]
    report.check("env: the run recorded 300 packages and stored 5 lock files",
                 python.get("packages") == 300 and len(python.get("package_list", {})) == 300 and len(stored) == 5,
                 f"{python.get('packages')} packages, {len(stored)} lock files stored")
    report.target("env: capture adds < 30 ms to a run", added < 0.030, f"{added * 1000:.1f} ms")


def write_safetensors(path, tensors, seeds):
    """Writes a .safetensors file of `tensors` F32 tensors of 16 MiB, tensor i filled
    from seed seeds[i] (random bytes; the same seed gives the same bytes)."""
    size = 16 * MIB
    header = {"__metadata__": {"format": "pt"}}
    for i in range(tensors):
        header[f"layer{i:02d}.weight"] = {"dtype": "F32", "shape": [2048, 2048],
                                           "data_offsets": [i * size, (i + 1) * size]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for seed in seeds:
            rng = random.Random(seed)
            f.write(rng.randbytes(size))


def bench_diff(work, mreg, env, report):
    """Times mreg diff of a fine-tune (one tensor changed) and of a full retrain (all
    changed) against b3sum and cp of the same two files."""
    reg = work / "diffreg"
    capture([mreg, "init", str(reg), "-q"], env)
    tensors = 32
    base = list(range(tensors))
    files = {}
    for name, seeds in [("base", base), ("head", base[:-1] + [1000]),
                        ("retrain", [2000 + i for i in base])]:
        folder = work / f"diff-{name}"
        folder.mkdir()
        write_safetensors(folder / "model.safetensors", tensors, seeds)
        (folder / "config.json").write_text(json.dumps({"name": name}) + "\n")
        capture([mreg, "--registry", str(reg), "-q", "push", str(folder), "--model", "m",
                 "--metric", f"acc=0.{len(files) + 7}"], env)
        files[name] = folder / "model.safetensors"
    size = files["base"].stat().st_size
    report.heading(f"diff: two versions of a {size / MIB:.0f} MiB .safetensors file, "
                   f"{tensors} tensors (3 runs each, medians)")
    copies = work / "diff-copies"

    def cp_both(a, b):
        shutil.rmtree(copies, ignore_errors=True)
        copies.mkdir()
        return sh("sh", "-c", f"cp '{a}' '{copies}/old' && cp '{b}' '{copies}/new'")

    for label, new, version, expect in [("fine-tune of one tensor", "head", 2, 1),
                                        ("full retrain", "retrain", 3, tensors)]:
        pair = (files["base"], files[new])
        argv = [mreg, "--registry", str(reg), "diff", "m@1", f"m@{version}"]
        b3, ours, ratio, rss = paired(lambda: sh("b3sum", "--num-threads", "2", *map(str, pair)),
                                      lambda: sh(*argv))
        cp_s, _, cp_ratio, _ = paired(lambda: cp_both(*pair), lambda: sh(*argv))
        report.row(f"b3sum --num-threads 2 of both files ({label})", b3)
        report.row(f"cp of both files ({label})", cp_s)
        report.row(f"mreg diff ({label})", ours,
                   f"{ratio:.2f}x b3sum, {cp_ratio:.2f}x cp; peak RSS {rss:.0f} MiB")
        out = json.loads(capture(argv + ["--json", "--only", "tensors"], env))
        summary = out["tensors"][0]["summary"]
        report.check(f"diff: {label} reports {expect} modified tensor(s)",
                     summary["modified"] == expect and summary["same"] == tensors - expect,
                     f"{summary['modified']} modified, {summary['same']} same")
        report.target(f"diff ({label}): within 3x b3sum of both files", ratio < 3.0, f"{ratio:.2f}x")
        report.target(f"diff ({label}): peak RSS under 64 MiB", rss < 64, f"{rss:.0f} MiB")
    quick = [mreg, "--registry", str(reg), "diff", "m@1", "m@3", "--no-tensors"]
    quick_s = statistics.median(sh(*quick)[0] for _ in range(5))
    report.row("mreg diff --no-tensors (files and metrics only)", quick_s)


# ---- dedup: fine-tunes and checkpoint series of one .safetensors file ----

HIDDEN, INTER, LAYERS, VOCAB, KV = 1280, 3584, 24, 32000, 256


def checkpoint_tensors():
    """Returns (name, shape) of a Llama-shaped bf16 checkpoint of about 1 GB, in the
    order Hugging Face writes names (sorted)."""
    shapes = {"model.embed_tokens.weight": [VOCAB, HIDDEN], "lm_head.weight": [VOCAB, HIDDEN],
              "model.norm.weight": [HIDDEN]}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = [HIDDEN]
        shapes[p + "post_attention_layernorm.weight"] = [HIDDEN]
        for name, shape in [("self_attn.q_proj", [HIDDEN, HIDDEN]), ("self_attn.k_proj", [KV, HIDDEN]),
                            ("self_attn.v_proj", [KV, HIDDEN]), ("self_attn.o_proj", [HIDDEN, HIDDEN]),
                            ("mlp.gate_proj", [INTER, HIDDEN]), ("mlp.up_proj", [INTER, HIDDEN]),
                            ("mlp.down_proj", [HIDDEN, INTER])]:
            shapes[p + name + ".weight"] = shape
    return sorted(shapes.items())


# bf16 of weights near N(0, 0.02): the high byte (sign, exponent) takes few values, the
# low byte (last exponent bit, mantissa) is close to random.
BF16_HIGH = bytes(((0x3A + (i % 4)) | (i & 0x80)) for i in range(256))
_TENSOR_CACHE = {}


def tensor_bytes(name, n, seed):
    key = (name, n, seed)
    if key not in _TENSOR_CACHE:
        import hashlib
        raw = hashlib.shake_256(f"{name}/{seed}".encode()).digest(n)
        out = bytearray(raw)
        out[1::2] = raw[1::2].translate(BF16_HIGH)
        _TENSOR_CACHE[key] = bytes(out)
    return _TENSOR_CACHE[key]


def write_checkpoint(path, seeds):
    """Writes the checkpoint with each tensor's bytes from seeds.get(name, 0)."""
    tensors = checkpoint_tensors()
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    changed = 0
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for name, shape in tensors:
            lo, hi = header[name]["data_offsets"]
            seed = seeds.get(name, 0)
            if seed:
                changed += hi - lo
            f.write(tensor_bytes(name, hi - lo, seed))
    return changed


def bench_dedup(work, mreg, env, report):
    """Stores fine-tunes and a checkpoint series of a ~1 GB bf16 .safetensors file in a
    registry of format 2 (parts) and one of format 1 (whole files, as DVC and git-lfs
    store them), and times first push, pull and diff of each."""
    names = [n for n, _ in checkpoint_tensors()]
    layer = lambda i: {n for n in names if n.startswith(f"model.layers.{i}.")}
    folder = work / "dedup-src"
    folder.mkdir()
    target = folder / "model.safetensors"
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}\n')
    write_checkpoint(target, {})
    size = target.stat().st_size
    report.heading(f"dedup: a bf16 .safetensors checkpoint of {size / 1e9:.2f} GB, "
                   f"{len(names)} tensors in {LAYERS} layers")

    def objects(reg):
        return sum(p.stat().st_size for p in (reg / ".mreg/objects").rglob("*") if p.is_file())

    def new_registry(name, fmt):
        reg = work / name
        shutil.rmtree(reg, ignore_errors=True)
        capture([mreg, "init", str(reg), "-q"], env)
        if fmt == 1:
            config = reg / ".mreg/config.toml"
            config.write_text(config.read_text().replace("format = 2", "format = 1"))
        return reg

    def push(reg):
        return sh(mreg, "--registry", str(reg), "-q", "--no-progress", "push", str(folder), "--model", "m", env=env)

    # First push: parts against whole files, alternating.
    regs = {1: iter(range(3)), 2: iter(range(3))}
    whole_s, parts_s, first_ratio, first_rss = paired(
        lambda: push(new_registry(f"dedup-whole-{next(regs[1])}", 1)),
        lambda: push(new_registry(f"dedup-parts-{next(regs[2])}", 2)))
    report.row("first push, whole files (format 1)", whole_s)
    report.row("first push, in parts (format 2)", parts_s,
               f"{first_ratio:.2f}x whole; peak RSS {first_rss:.0f} MiB")
    report.target("dedup: first push in parts within 1.1x of whole files", first_ratio <= 1.1,
                  f"{first_ratio:.2f}x")
    parts, whole = work / "dedup-parts-0", work / "dedup-whole-0"

    def pull(reg):
        dst = work / "dedup-pulled"
        shutil.rmtree(dst, ignore_errors=True)
        return sh(mreg, "--registry", str(reg), "-q", "--no-progress", "pull", "m@1", "--to", str(dst), env=env)

    w_pull, p_pull, pull_ratio, pull_rss = paired(lambda: pull(whole), lambda: pull(parts))
    report.row("pull, whole files", w_pull)
    report.row("pull, in parts", p_pull, f"{pull_ratio:.2f}x whole; peak RSS {pull_rss:.0f} MiB")
    report.target("dedup: pull in parts within 1.1x of whole files", pull_ratio <= 1.1, f"{pull_ratio:.2f}x")
    report.check("dedup: the pulled checkpoint is the pushed one",
                 (work / "dedup-pulled/model.safetensors").read_bytes() == target.read_bytes(), "compared")

    # Fine-tunes, each pushed onto the base, as versions 2, 3 and 4.
    version = 1
    for label, changed_names, limit_note in [
        ("head-only fine-tune (lm_head)", {"lm_head.weight"}, "changed + 1%"),
        ("last 2 layers + head", layer(LAYERS - 1) | layer(LAYERS - 2) | {"lm_head.weight", "model.norm.weight"}, "changed + 1%"),
        ("full fine-tune (every tensor)", set(names), "whole file + 1%"),
    ]:
        version += 1
        changed = write_checkpoint(target, {n: version for n in changed_names})
        grown = {}
        for fmt, reg in [(1, whole), (2, parts)]:
            before = objects(reg)
            push(reg)
            grown[fmt] = objects(reg) - before
        limit = changed + size // 100 if "full" not in label else grown[1] + size // 100
        report.row(f"{label}: stored, whole files (MB)", grown[1] / 1e6, f"changed tensors {changed / 1e6:.1f} MB")
        report.row(f"{label}: stored, in parts (MB)", grown[2] / 1e6,
                   f"{grown[2] / max(grown[1], 1):.3f}x whole files")
        report.target(f"dedup: {label} stores <= {limit_note}", grown[2] <= limit,
                      f"{grown[2] / 1e6:.1f} MB, limit {limit / 1e6:.1f} MB")
        argv = [mreg, "--registry", str(parts), "diff", f"m@{version - 1 if version > 2 else 1}", f"m@{version}"]
        if version == 2:
            diff_s = statistics.median(sh(*argv)[0] for _ in range(3))
            b3, _ = median(lambda: sh("b3sum", "--num-threads", "2", str(target)))
            report.row(f"{label}: mreg diff m@1 m@2 (tensors)", diff_s, f"{diff_s / b3:.2f}x b3sum of one file")

    # A series of 10 checkpoints of one run, the backbone frozen: head and final norm move.
    series = new_registry("dedup-series", 2)
    write_checkpoint(target, {})
    push(series)
    for step in range(1, 10):
        write_checkpoint(target, {"lm_head.weight": 100 + step, "model.norm.weight": 100 + step})
        push(series)
    stored = objects(series)
    saved = 1 - stored / (10 * size)
    report.row("10-checkpoint series, frozen backbone: stored (MB)", stored / 1e6,
               f"saves {saved:.1%} of 10 whole files")
    report.target("dedup: a 10-checkpoint series with a frozen backbone saves >= 85%", saved >= 0.85,
                  f"{saved:.1%}")

    # A float-aware codec: byte planes before zstd, measured on the base checkpoint.
    write_checkpoint(target, {})
    codec = REPO / "target/release/examples/bf16_planes"
    if not codec.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "bf16_planes"], cwd=REPO, check=True)
    measured = json.loads(capture([str(codec), str(target)], env))
    report.row("bf16 byte planes + zstd -1: saving over zstd -1 alone", measured["saving_over_plain"],
               f"decode {measured['planes_decode_gbps']:.2f} GB/s on one core "
               f"(plain zstd {measured['plain_decode_gbps']:.2f} GB/s)")
    report.target("dedup: bf16 byte planes save >= 25% at >= 1 GB/s decode (ship only if so)",
                  measured["saving_over_plain"] >= 0.25 and measured["planes_decode_gbps"] >= 1.0,
                  f"{measured['saving_over_plain']:.1%} at {measured['planes_decode_gbps']:.2f} GB/s")
    for p in [folder, series, work / "dedup-pulled"] + list(work.glob("dedup-whole-*")) + list(work.glob("dedup-parts-*")):
        shutil.rmtree(p, ignore_errors=True)
    _TENSOR_CACHE.clear()


def start_s3():
    """Starts the tests' moto server on 127.0.0.1; returns (port, the process)."""
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/support/s3_server.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        sys.exit("the S3 server did not start (pip install 'moto[server]')")
    return int(line[1]), proc


def bench_sync(work, mreg, env, report):
    """Times `mreg sync` of a 514 MiB model (two 256 MiB weight files, 500 small files)
    to an empty folder remote and to an empty bucket on a local S3 server, a sync with
    nothing new, and `mreg clone` back, against cp, b3sum and boto3 on the same files."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    model = work / "sync-model"
    model.mkdir()
    write_random(model / "weights-1.bin", 256 * MIB, 1)
    write_random(model / "weights-2.bin", 256 * MIB, 2)
    for i in range(500):
        (model / f"shard-{i:03d}.json").write_text(json.dumps({"i": i, "w": [i] * 400}) + "\n")
    files = sorted(p for p in model.iterdir())
    total = sum(p.stat().st_size for p in files)
    reg = work / "sync-reg"
    capture([mreg, "init", str(reg), "-q"], env)
    capture([mreg, "--registry", str(reg), "-q", "push", str(model), "--model", "m"], env)
    port, server = start_s3()
    s3env = dict(env, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                 AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", MREG_CACHE_DIR=str(work / "sync-cache"))
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    report.heading(f"sync: a {total / MIB:.0f} MiB model of {len(files)} files "
                   "(3 runs each, medians; S3 is moto on 127.0.0.1)")
    counter = iter(range(1_000_000))

    def fresh_remote(url):
        shutil.rmtree(reg / ".mreg" / "cache" / "remotes", ignore_errors=True)
        shutil.rmtree(reg / ".mreg" / "remotes.toml", ignore_errors=True)
        (reg / ".mreg" / "remotes.toml").unlink(missing_ok=True)
        capture([mreg, "--registry", str(reg), "-q", "remote", "add", "r", url], s3env)

    def folder_sync():
        dest = work / "sync-share"
        shutil.rmtree(dest, ignore_errors=True)
        fresh_remote(str(dest))
        return sh(mreg, "--registry", str(reg), "-q", "sync", env=s3env)

    def new_bucket():
        name = f"bench-{next(counter)}"
        client.create_bucket(Bucket=name)
        return name

    def s3_sync():
        fresh_remote(f"s3://{new_bucket()}/reg")
        return sh(mreg, "--registry", str(reg), "-q", "sync", env=s3env)

    def cp_model():
        dest = work / "sync-cp"
        shutil.rmtree(dest, ignore_errors=True)
        return sh("cp", "-r", str(model), str(dest))

    config = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=8)

    def boto_upload():
        bucket = new_bucket()
        start = time.perf_counter()
        for p in files:
            client.upload_file(str(p), bucket, f"plain/{p.name}", Config=config)
        return time.perf_counter() - start, 0

    b3 = median(lambda: sh("b3sum", "--num-threads", "2", *map(str, files)))[0]
    report.row("b3sum --num-threads 2 of the model's files", b3)
    cp_s, ours, ratio, rss = paired(cp_model, folder_sync)
    report.row("cp -r of the model", cp_s)
    report.row("mreg sync to an empty folder remote", ours,
               f"{ratio:.2f}x cp, {ours / b3:.2f}x b3sum; peak RSS {rss:.0f} MiB")
    nochange = median(lambda: sh(mreg, "--registry", str(reg), "-q", "sync", env=s3env), n=5)[0]
    report.row("mreg sync with nothing new (folder)", nochange)
    clone_dir = work / "sync-clone"

    def clone_folder():
        shutil.rmtree(clone_dir, ignore_errors=True)
        return sh(mreg, "-q", "clone", str(work / "sync-share"), str(clone_dir), env=s3env)

    cp_s, ours, ratio, rss = paired(cp_model, clone_folder)
    report.row("mreg clone from the folder remote (every object re-hashed)", ours,
               f"{ratio:.2f}x cp; peak RSS {rss:.0f} MiB")

    boto_s, ours, ratio, rss = paired(boto_upload, s3_sync)
    report.row("boto3 upload_file of each file (16 MiB parts, 8 threads)", boto_s)
    report.row("mreg sync to an empty bucket", ours,
               f"{ratio:.2f}x boto3; peak RSS {rss:.0f} MiB")
    nochange = median(lambda: sh(mreg, "--registry", str(reg), "-q", "sync", env=s3env), n=5)[0]
    report.row("mreg sync with nothing new (bucket)", nochange)
    url = json.loads(capture([mreg, "--registry", str(reg), "--json", "remote", "list"], s3env))[0]["url"]

    def clone_s3():
        shutil.rmtree(clone_dir, ignore_errors=True)
        return sh(mreg, "-q", "clone", url, str(clone_dir), env=s3env)

    def boto_download():
        dest = work / "sync-dl"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        bucket = url[len("s3://"):].split("/")[0]
        if not client.list_objects_v2(Bucket=bucket, Prefix="plain/").get("KeyCount"):
            for p in files:
                client.upload_file(str(p), bucket, f"plain/{p.name}", Config=config)
        start = time.perf_counter()
        for p in files:
            client.download_file(bucket, f"plain/{p.name}", str(dest / p.name), Config=config)
        return time.perf_counter() - start, 0

    boto_s, ours, ratio, rss = paired(boto_download, clone_s3)
    report.row("boto3 download_file of each file", boto_s)
    report.row("mreg clone from the bucket (every object re-hashed)", ours,
               f"{ratio:.2f}x boto3; peak RSS {rss:.0f} MiB")
    pulled = work / "sync-pulled"
    capture([mreg, "--registry", str(clone_dir), "-q", "pull", "m@1", "--to", str(pulled)], env)
    same = all((pulled / p.name).read_bytes() == p.read_bytes() for p in files)
    report.check("sync: a clone from the bucket pulls the model byte-identical", same, "")
    server.stdin.close()
    server.wait()


def bench_gc(work, mreg, env, report):
    """Times `mreg gc` of 199 removed versions of a 100 MiB model (200 pushed, four 25 MiB
    weight files, one rewritten per version) against `rm -rf` of a copy of the same
    object folder, and `mreg gc --dry-run` on a registry of 10,000 objects against
    `find -printf %s` of its object folder (the walk and stat it cannot do without)."""
    report.heading("gc")
    reg = work / "gc-reg"
    src = work / "gc-model"
    shutil.rmtree(reg, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    capture([mreg, "init", str(reg)], env)
    for k in range(4):
        write_random(src / f"w{k}.bin", 25 * MIB, k)
    (src / "config.json").write_text('{"layers": 24}\n')
    for v in range(1, 201):
        write_random(src / f"w{v % 4}.bin", 25 * MIB, 1000 + v)
        capture([mreg, "--registry", str(reg), "-q", "push", str(src), "--model", "m"], env)
    capture([mreg, "--registry", str(reg), "-q", "rm", *[f"m@{v}" for v in range(1, 200)]], env)
    objects = reg / ".mreg" / "objects"
    copy = work / "gc-objects-copy"
    shutil.rmtree(copy, ignore_errors=True)
    subprocess.run(["cp", "-r", str(objects), str(copy)], check=True)
    base, _ = sh("rm", "-rf", str(copy))
    dry = json.loads(capture([mreg, "--registry", str(reg), "gc", "--dry-run", "--json"], env))
    seconds, rss = sh(mreg, "--registry", str(reg), "-q", "gc")
    freed = dry["freed_bytes"]
    report.row("gc: 199 of 200 versions of a 100 MiB model removed", seconds,
               f"{seconds / base:.2f}x rm -rf of the object folder ({base:.3f} s); "
               f"freed {freed / MIB:.0f} MiB; peak RSS {rss:.0f} MiB")
    report.check("gc: frees what the dry run said, all but the last version's 100 MiB",
                 freed >= 199 * 25 * MIB, f"{freed / MIB:.0f} MiB")
    pulled = work / "gc-pulled"
    capture([mreg, "--registry", str(reg), "-q", "pull", "m@200", "--to", str(pulled)], env)
    same = all((pulled / p.name).read_bytes() == p.read_bytes() for p in src.iterdir())
    report.check("gc: the surviving version pulls byte-identical", same, "")

    small_reg = work / "gc-small-reg"
    small = work / "gc-small"
    shutil.rmtree(small_reg, ignore_errors=True)
    shutil.rmtree(small, ignore_errors=True)
    for i in range(10_000):
        d = small / f"d{i // 500:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_text(f"file {i}\n")
    capture([mreg, "init", str(small_reg)], env)
    capture([mreg, "--registry", str(small_reg), "-q", "push", str(small), "--model", "s"], env)
    small_objects = small_reg / ".mreg" / "objects"
    count = sum(1 for _ in small_objects.rglob("*") if _.is_file())
    base, ours, ratio, rss = paired(
        lambda: sh("sh", "-c", f"find '{small_objects}' -type f -printf '%s\\n' > /dev/null"),
        lambda: sh(mreg, "--registry", str(small_reg), "-q", "gc", "--dry-run"))
    report.row(f"gc --dry-run: {count} objects", ours,
               f"{ratio:.2f}x find -printf ({base:.3f} s); peak RSS {rss:.0f} MiB")


def bench_gc_bucket(work, mreg, env, report):
    """Times `mreg gc --registry s3://…` deleting the 5,000 objects of 10 removed
    versions (of 11, 500 small files each) on a local S3 server, against boto3 listing
    the same number of keys and deleting them with DeleteObjects, 1,000 a request: the
    requests no collector of a bucket can do without."""
    import boto3

    port, server = start_s3()
    try:
        s3env = dict(env, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                     AWS_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                     MREG_CACHE_DIR=str(work / "gc-bucket-cache"))
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                              aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        client.create_bucket(Bucket="gc-bench")
        reg = work / "gc-bucket-reg"
        src = work / "gc-bucket-model"
        shutil.rmtree(reg, ignore_errors=True)
        capture([mreg, "init", str(reg), "-q"], env)
        for v in range(11):
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            for i in range(500):
                (src / f"f{i:03d}.json").write_text(json.dumps({"v": v, "i": i}) + "\n")
            capture([mreg, "--registry", str(reg), "-q", "push", str(src), "--model", "m"], env)
        url = "s3://gc-bench/reg"
        capture([mreg, "--registry", str(reg), "-q", "remote", "add", "bucket", url], s3env)
        capture([mreg, "--registry", str(reg), "-q", "sync", "bucket"], s3env)
        capture([mreg, "--registry", url, "-q", "rm", *[f"m@{v}" for v in range(1, 11)]], s3env)
        keys = [f"floor/{i:05d}" for i in range(5010)]
        for key in keys:
            client.put_object(Bucket="gc-bench", Key=key, Body=b"x")

        def floor():
            listed = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="gc-bench", Prefix="floor/"):
                listed.extend(o["Key"] for o in page.get("Contents", []))
            for i in range(0, len(listed), 1000):
                client.delete_objects(Bucket="gc-bench", Delete={"Objects": [{"Key": k} for k in listed[i:i + 1000]]})

        start = time.monotonic()
        floor()
        base = time.monotonic() - start
        dry = json.loads(capture([mreg, "--registry", url, "gc", "--dry-run", "--json"], s3env))
        seconds, rss = sh(mreg, "--registry", url, "-q", "gc", env=s3env)
        count = sum(k["count"] for k in dry["kinds"][:3])
        report.row(f"gc on a bucket: {count} objects of 10 removed versions", seconds,
                   f"{seconds / base:.2f}x boto3 list + DeleteObjects of as many keys "
                   f"({base:.3f} s); peak RSS {rss:.0f} MiB")
        left = client.list_objects_v2(Bucket="gc-bench", Prefix="reg/objects/").get("KeyCount", 0)
        report.check("gc on a bucket: only the surviving version's objects are left",
                     left == 501, f"{left} objects left")
    finally:
        server.stdin.close()
        server.wait()


# ---- report: pictures of runs ----

def peak_rss_mib(argv, env):
    """Runs a command; returns its peak RSS in MiB (from wait4's rusage)."""
    actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_maxrss / 1024


def bench_report(work, mreg, env, report):
    """Times `mreg report` of 20 runs of 10,000 steps against reading their series."""
    reg = work / "report"
    shutil.rmtree(reg, ignore_errors=True)
    reg.mkdir()
    run_env = dict(env, MREG_REGISTRY=str(reg))
    subprocess.run([mreg, "init", str(reg), "-q"], env=env, check=True)
    print("# logging 20 runs of 10,000 steps", file=sys.stderr)
    ids = []
    for r in range(1, 21):
        lines = work / "report-metrics.jsonl"
        with open(lines, "w") as f:
            for step in range(1, 10_001):
                f.write(json.dumps({"step": step, "loss": 2.0 / (step * r) + 0.01 * (step % 7),
                                    "acc": 0.5 + 0.4 * step / 10_000, "lr": 0.001 * 0.9995 ** step})
                        + "\n")
        out = capture([mreg, "--json", "-q", "run", "--experiment", "bench", "--name", f"run {r}",
                       "--param", f"seed={r}", "--", mreg, "log", "-q", "--metrics-file", str(lines)],
                      run_env)
        ids.append(json.loads(out)["run"])
    page = work / "report.html"
    spec = work / "report.vl.json"
    html_argv = [mreg, "--registry", str(reg), "-q", "report", "--experiment", "bench", "--out", str(page)]
    vega_argv = html_argv[:-1] + [str(spec), "--vega"]
    read_argvs = [[mreg, "--registry", str(reg), "--json", "show", i, "--series"] for i in ids]

    def read_all():
        return sum(spawn(a, env) for a in read_argvs)

    html_s, vega_s, read_s = [], [], []
    for _ in range(5):  # alternating rounds
        read_s.append(read_all())
        html_s.append(spawn(html_argv, env))
        vega_s.append(spawn(vega_argv, env))
    html, vega, read = (statistics.median(x) for x in (html_s, vega_s, read_s))
    text = page.read_text()
    charts = text.count("<svg")
    legend = text.count("<li><span style=")
    report.check("report: a chart per series (3) and a legend entry per run per chart (60)",
                 charts == 3 and legend == 60, f"{charts} charts, {legend} legend entries")
    size = page.stat().st_size
    rss = peak_rss_mib(html_argv, env)
    report.heading("-- report: 20 runs x 10,000 steps x 3 series (600,000 points)")
    report.row("mreg show RUN --series --json, each of the 20 runs", read)
    report.row("mreg report (HTML)", html, f"{html / read:.2f}x reading the series")
    report.row("mreg report --vega", vega, f"{vega / read:.2f}x reading the series")
    report.heading(f"   page {size / 1024:.0f} KiB, spec {spec.stat().st_size / 1024:.0f} KiB; "
                   f"report peak RSS {rss:.0f} MiB")
    report.target("report: 20 x 10,000 page under 1 MB", size < 1_000_000, f"{size / 1024:.0f} KiB")
    shutil.rmtree(reg, ignore_errors=True)

def start_oci_registry():
    """Starts Debian's docker-registry on 127.0.0.1 (tests/support/oci_registry.py);
    returns (process, port). The registry stops when the process's stdin closes."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-registry", "skopeo"], check=True)
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/support/oci_registry.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        sys.exit(f"the OCI registry did not start: {line}")
    return proc, int(line[1])


def bench_oci(work, mreg, env, report):
    """Times `mreg export --oci` of the 1.34 GB model folder against `cp -r` of it, and
    `mreg push-oci` to Debian's docker-registry on 127.0.0.1 against `skopeo copy` of the
    same layout to it, each into a fresh place; checks skopeo reads the layout and the
    registry's manifest digest is the layout's."""
    report.heading("oci: the 1.34 GB model folder as a ModelPack artifact")
    src = work / "oci-model"
    if not src.exists():
        make_model(src)
    reg = work / "oci-reg"
    shutil.rmtree(reg, ignore_errors=True)
    reg.mkdir()
    capture([mreg, "init", str(reg)], env)
    capture([mreg, "--registry", str(reg), "push", str(src), "--model", "m"], env)
    first, rss = sh(mreg, "--registry", str(reg), "export", "m@1", "--oci", str(work / "oci-first"), env=env)
    report.row("mreg export --oci, digests not yet known", first, f"peak RSS {rss:.0f} MiB")
    shutil.rmtree(work / "oci-first", ignore_errors=True)
    out, copy = work / "oci-layout", work / "oci-cp"

    def cp():
        shutil.rmtree(copy, ignore_errors=True)
        return sh("cp", "-r", str(src), str(copy))

    def export():
        shutil.rmtree(out, ignore_errors=True)
        return sh(mreg, "--registry", str(reg), "export", "m@1", "--oci", str(out), env=env)

    base, ours, ratio, rss = paired(cp, export)
    report.row("cp -r", base)
    report.row("mreg export --oci (digests known)", ours, f"{ratio:.2f}x cp -r; peak RSS {rss:.0f} MiB")
    manifest = capture(["skopeo", "inspect", "--raw", f"oci:{out}:1"], env)
    exported = json.loads(capture([mreg, "--registry", str(reg), "export", "m@1", "--oci", str(out), "--json"], env))
    import hashlib
    report.check("skopeo reads the layout", hashlib.sha256(manifest.encode()).hexdigest() == exported["digest"][7:],
                 exported["digest"][:19])
    shutil.rmtree(copy, ignore_errors=True)

    # Each push goes to a registry started empty: one that held the blobs in another
    # repository would let skopeo mount them instead of sending them.
    def fresh_registry_push(argv_of):
        proc, port = start_oci_registry()
        try:
            return sh(*argv_of(port), env=env)
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)

    def skopeo_push():
        return fresh_registry_push(lambda port: [
            "skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{out}:1",
            f"docker://127.0.0.1:{port}/bench/m:1"])

    def mreg_push():
        return fresh_registry_push(lambda port: [
            mreg, "--registry", str(reg), "push-oci", "m@1", f"127.0.0.1:{port}/bench/m:1", "--plain-http"])

    base, ours, ratio, rss = paired(skopeo_push, mreg_push)
    report.row("skopeo copy oci: -> empty registry", base)
    report.row("mreg push-oci -> empty registry", ours, f"{ratio:.2f}x skopeo; peak RSS {rss:.0f} MiB")
    proc, port = start_oci_registry()
    try:
        capture([mreg, "--registry", str(reg), "push-oci", "m@1", f"127.0.0.1:{port}/bench/m:1", "--plain-http"], env)
        again, _ = median(lambda: sh(mreg, "--registry", str(reg), "push-oci", "m@1",
                                     f"127.0.0.1:{port}/bench/m:again", "--plain-http", env=env))
        report.row("mreg push-oci again (every blob there)", again)
        remote = capture(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://127.0.0.1:{port}/bench/m:1"], env)
        report.check("the registry holds the layout's manifest",
                     hashlib.sha256(remote.encode()).hexdigest() == exported["digest"][7:], exported["digest"][:19])
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(reg, ignore_errors=True)


MLFLOW_PACKAGES = ["mlflow-skinny==3.18.0", "SQLAlchemy==2.1.9", "alembic==1.20.1"]

MLFLOW_TEMPLATE = r"""
import sys, warnings
warnings.filterwarnings("ignore")
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("bench")
with mlflow.start_run(run_name="template"):
    mlflow.log_params({f"p{i}": v for i, v in enumerate([0.001, 32, "adam", True, 0.9, 10, "cosine", 0.1, 512, "bf16"])})
    mlflow.set_tags({"team": "bench", "mlflow.source.git.commit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"})
    for step in range(10):
        mlflow.log_metrics({f"m{k}": 1.0 / (step + k + 1) for k in range(10)}, step=step)
"""

MLFLOW_COUNT = r"""
import sys, warnings
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
exp = c.get_experiment_by_name("bench").experiment_id
n, token = 0, None
while True:
    page = c.search_runs([exp], max_results=50000, page_token=token)
    n += len(page)
    token = page.token
    if not token:
        break
print(n)
"""


def mlflow_python(work):
    """Returns the Python of a venv with MLflow 3, made under WORKDIR on first use."""
    venv = work / "mlflow-venv"
    python = venv / "bin/python"
    if subprocess.run([str(python), "-c", "import mlflow, sqlalchemy"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                        *MLFLOW_PACKAGES], check=True)
    return str(python)


def make_mlflow_db(work, python, n):
    """Writes an MLflow SQLite store of n runs: one run logged by MLflow itself (10 params,
    10 metrics of 10 steps, tags), whose rows are then copied n - 1 times with new ids,
    times and values, in SQL. MLflow must count n runs in it after."""
    import sqlite3
    import uuid
    folder = work / "mlflow-db"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    uri = f"sqlite:///{folder}/mlflow.db"
    subprocess.run([python, "-c", MLFLOW_TEMPLATE, uri], check=True, cwd=folder, capture_output=True)
    db = sqlite3.connect(folder / "mlflow.db")
    (template,) = db.execute("SELECT run_uuid FROM runs").fetchone()
    run_cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    run_row = dict(zip(run_cols, db.execute("SELECT * FROM runs WHERE run_uuid = ?", (template,)).fetchone()))
    params = db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (template,)).fetchall()
    tags = db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (template,)).fetchall()
    metrics = db.execute("SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?",
                         (template,)).fetchall()
    latest = db.execute("SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = ?",
                        (template,)).fetchall()
    rng = random.Random(7)
    for i in range(1, n):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        shift = i * 1000
        row = dict(run_row, run_uuid=run_id, name=f"run-{i}",
                   start_time=run_row["start_time"] + shift, end_time=run_row["end_time"] + shift)
        db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                       [(k, v, run_id) for k, v in params])
        db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                       [(k, (f"run-{i}" if k == "mlflow.runName" else v), run_id) for k, v in tags])
        scale = rng.uniform(0.5, 1.5)
        db.executemany("INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                       [(k, v * scale, t + shift, s, nan, run_id) for k, v, t, s, nan in metrics])
        db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [(k, v * scale, t + shift, s, nan, run_id) for k, v, t, s, nan in latest])
    db.commit()
    db.close()
    counted = int(subprocess.run([python, "-c", MLFLOW_COUNT, uri], check=True, capture_output=True,
                                 text=True, cwd=folder).stdout.strip())
    return folder / "mlflow.db", counted


def bench_mlflow(work, mreg, env, report):
    """Times `mreg import mlflow` of a 10,000-run MLflow database (10 params, 10 metrics
    of 10 steps each: 1,000,000 metric points), into a fresh registry, and again (all
    runs known: nothing to do), against MLflow counting the same runs."""
    report.heading("mlflow import: 10,000 runs, 10 params, 10 metrics x 10 steps (SQLite)")
    python = mlflow_python(work)
    n = 10_000
    db, counted = make_mlflow_db(work, python, n)
    report.check("MLflow reads the generated store back", counted == n, f"{counted} runs")
    count_s, _ = median(lambda: sh(python, "-c", MLFLOW_COUNT, f"sqlite:///{db}", env=env), n=1)
    report.row("MLflow: search_runs over all of them", count_s)
    reg = work / "mlflow-reg"

    def fresh():
        shutil.rmtree(reg, ignore_errors=True)
        reg.mkdir()
        sh(mreg, "init", str(reg), env=env)
        return sh(mreg, "--registry", str(reg), "import", "mlflow", str(db), env=env)

    seconds, rss = median(fresh, n=3)
    report.row("mreg import mlflow (fresh registry)", seconds, f"peak RSS {rss:.0f} MiB")
    again, _ = median(lambda: sh(mreg, "--registry", str(reg), "import", "mlflow", str(db), env=env), n=3)
    report.row("mreg import mlflow again (nothing new)", again)
    out = json.loads(capture([mreg, "--registry", str(reg), "import", "mlflow", str(db), "--json"], env))
    report.check("every run is in the registry", out["runs_already"] == n, f"{out['runs_already']} runs")
    listed = json.loads(capture([mreg, "--registry", str(reg), "runs", "--limit", str(n + 1), "--json"], env))
    report.check("mreg runs lists them", len(listed) == n, f"{len(listed)} runs")
    report.target("mlflow: 10,000 runs imported in under 30 s", seconds < 30, f"{seconds:.1f} s")
    shutil.rmtree(reg, ignore_errors=True)


SECTIONS = ["model", "small", "packs", "remote", "runs", "stages", "diff", "dedup", "sync", "gc", "gc-bucket", "env",
            "report", "mlflow", "oci"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), metavar="SECTIONS",
                        help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("workdir", nargs="?", type=Path)
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        parser.error(f"unknown section {', '.join(unknown) or '(none)'}; choose from {', '.join(SECTIONS)}")

    if any(s in sections for s in ("model", "small", "packs", "remote", "diff", "dedup", "sync")):
        ensure_tools(peers="packs" in sections or "remote" in sections)
    mreg = os.environ.get("MREG") or str(REPO / "target/release/mreg")
    if "MREG" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mreg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NO_COLOR="1")
    env.pop("MREG_RUN_ID", None)
    report = Report()

    fs_type = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True).stdout.strip()
    version = subprocess.run([mreg, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# {version}; {os.cpu_count()} cores; {fs_type} at {work}")

    for label, maker in [("model", make_model), ("small", make_small)]:
        if label in sections:
            bench_files(work, mreg, env, report, label, maker)
    if "packs" in sections:
        bench_packs(work, mreg, env, report)
    if "remote" in sections:
        bench_remote(work, mreg, env, report)
    if "runs" in sections:
        bench_runs(work, mreg, env, report)
    if "stages" in sections:
        bench_stages(work, mreg, env, report)
    if "diff" in sections:
        bench_diff(work, mreg, env, report)
    if "dedup" in sections:
        bench_dedup(work, mreg, env, report)
    if "sync" in sections:
        bench_sync(work, mreg, env, report)
    if "gc" in sections:
        bench_gc(work, mreg, env, report)
    if "gc-bucket" in sections:
        bench_gc_bucket(work, mreg, env, report)
    if "env" in sections:
        bench_env(work, mreg, env, report)
    if "report" in sections:
        bench_report(work, mreg, env, report)
    if "mlflow" in sections:
        bench_mlflow(work, mreg, env, report)
    if "oci" in sections:
        bench_oci(work, mreg, env, report)

    report.print()
    if report.failed():
        print(f"\nFAIL: {len(report.failed())} correctness check(s) failed; keeping {work}", file=sys.stderr)
        sys.exit(1)
    if not os.environ.get("KEEP"):
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
