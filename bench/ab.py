#!/usr/bin/env python3
"""Times two mreg binaries against each other on the same data: a refactor's check.

Usage: bench/ab.py BASE_BINARY NEW_BINARY [WORKDIR]   (ROUNDS=9 by default)

Generates a model (two 512 MiB incompressible files and a config) and 5,000 small files
of 4-64 KiB in 50 folders, then, for each round, runs with each binary in turn (the
order alternating between rounds): push into a fresh registry, a re-push with no
change, pull, for both data sets, then a promotion and `mreg runs`. Prints the median
seconds of each, the median of the per-round ratios NEW/BASE, and each binary's peak
RSS. The machines are shared and noisy: read the ratios, over enough rounds.
"""

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make(work):
    """Writes the data sets under `work`, once."""
    if (work / "model").exists():
        return
    (work / "model").mkdir(parents=True)
    for i in range(2):
        with open(work / f"model/w{i}.bin", "wb") as out:
            subprocess.run(["head", "-c", str(512 << 20), "/dev/urandom"], stdout=out, check=True)
    (work / "model/config.json").write_text('{"hidden": 768}\n')
    rnd = random.Random(7)
    for i in range(5000):
        folder = work / "small" / f"d{i % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.bin").write_bytes(rnd.randbytes(rnd.randint(4 << 10, 64 << 10)))


def timed(argv, env):
    """Runs a command after a sync; returns (seconds, peak RSS in MiB)."""
    subprocess.run(["sync"], check=True)
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *argv],
                              env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed: {proc.stderr}")
        return seconds, int(rss.read().strip() or 0) / 1024


def one_round(binary, work, results):
    """Runs every step with `binary` in a fresh registry."""
    reg = work / "reg"
    for path in [reg, work / "pull-model", work / "pull-small"]:
        shutil.rmtree(path, ignore_errors=True)
    env = dict(os.environ, MREG_REGISTRY=str(reg), NO_COLOR="1")
    env.pop("MREG_RUN_ID", None)
    subprocess.run([binary, "init", str(reg)], env=env, check=True, capture_output=True)
    steps = [
        ("push model", ["push", str(work / "model"), "--model", "m"]),
        ("re-push model", ["push", str(work / "model"), "--model", "m"]),
        ("pull model", ["pull", "m@1", "--to", str(work / "pull-model")]),
        ("push small", ["push", str(work / "small"), "--model", "s"]),
        ("re-push small", ["push", str(work / "small"), "--model", "s"]),
        ("pull small", ["pull", "s@1", "--to", str(work / "pull-small")]),
        ("promote", ["promote", "m@1", "production"]),
        ("runs", ["runs", "--sort", "-start"]),
    ]
    for name, args in steps:
        results.setdefault(name, {}).setdefault(binary, []).append(timed([binary, "-q", *args], env))


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[1])
    base, new = sys.argv[1], sys.argv[2]
    work = Path(sys.argv[3]) if len(sys.argv) == 4 else Path(tempfile.mkdtemp(prefix="mreg-ab-"))
    make(work)
    results = {}
    for r in range(int(os.environ.get("ROUNDS", "9"))):
        for binary in ([base, new] if r % 2 == 0 else [new, base]):
            one_round(binary, work, results)
    print(f"{'step':<15} {'base s':>8} {'new s':>8} {'new/base':>9} {'base MiB':>9} {'new MiB':>8}")
    for name, by in results.items():
        b = [s for s, _ in by[base]]
        n = [s for s, _ in by[new]]
        ratio = statistics.median(x / y for x, y in zip(n, b))
        rb = max(m for _, m in by[base])
        rn = max(m for _, m in by[new])
        print(f"{name:<15} {statistics.median(b):8.3f} {statistics.median(n):8.3f} "
              f"{ratio:9.2f} {rb:9.0f} {rn:8.0f}")
    if len(sys.argv) == 3:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
