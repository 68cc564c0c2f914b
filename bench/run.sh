#!/usr/bin/env bash
# Benchmark mreg against cp and b3sum on the same files, in one run.
#
# Usage: bench/run.sh [WORKDIR]
#   WORKDIR  where data, registries and copies go (default: a fresh dir under
#            ${TMPDIR:-/tmp}). Everything is created in a fresh subfolder of it and
#            removed at the end, unless KEEP=1.
#
# Figures are warm-cache: nothing is dropped from the page cache, but `sync` runs
# (untimed) before every timed step so that writeback left over from an earlier step
# is not billed to the next one. Shared machines are noisy: compare the ratios taken
# within one run, not seconds across runs.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIB=$((1 << 20))

say() { printf '# %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Tools: b3sum (the hashing baseline) and GNU time (peak RSS), from Debian if missing.
# ---------------------------------------------------------------------------
apt_install() { # apt_install PACKAGE: install, running `apt-get update` first if needed
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    command -v apt-get >/dev/null || return 1
    $sudo apt-get install -y -qq "$1" >&2 ||
        { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "$1" >&2; }
}
need() { # need COMMAND PACKAGE
    [[ -x $1 ]] || command -v "$1" >/dev/null && return
    say "$1 is missing: installing Debian package $2"
    apt_install "$2" || die "$1 is missing and 'apt-get install -y $2' failed; install $2 and rerun"
    [[ -x $1 ]] || command -v "$1" >/dev/null || die "$2 installed but $1 still not found"
}
need b3sum b3sum
need /usr/bin/time time
need python3 python3
need openssl openssl

# ---------------------------------------------------------------------------
# Build mreg (release) and set up the work folder.
# ---------------------------------------------------------------------------
say "building: cargo build --release"
(cd "$REPO" && cargo build --release) >&2 || die "cargo build --release failed"
MREG="$REPO/target/release/mreg"

MADE_WORKDIR="" # WORKDIR itself, if this script created it
if [[ $# -ge 1 ]]; then
    [[ -e $1 ]] || MADE_WORKDIR=$1
    mkdir -p "$1"
    W=$(mktemp -d "$(cd "$1" && pwd)/mreg-bench.XXXXXX")
else
    W=$(mktemp -d "${TMPDIR:-/tmp}/mreg-bench.XXXXXX")
fi
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then say "kept $W (KEEP=1)"; return; fi
    rm -rf "$W"
    [[ -z $MADE_WORKDIR ]] || rmdir "$MADE_WORKDIR" 2>/dev/null || true
}
trap cleanup EXIT
export NO_COLOR=1

# ---------------------------------------------------------------------------
# Timing helpers. T is wall seconds; RSS is peak resident set in MiB.
# EPOCHREALTIME (bash 5) reads the clock without forking; `date +%s.%N` otherwise.
# ---------------------------------------------------------------------------
timed() { # timed CMD...: sync (untimed), then time CMD with its stdout discarded
    local t0 t1
    sync
    t0=${EPOCHREALTIME:-$(date +%s.%N)}
    "$@" >/dev/null || die "failed: $*"
    t1=${EPOCHREALTIME:-$(date +%s.%N)}
    T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}
timed_rss() { # timed_rss CMD...: like timed, and RSS from /usr/bin/time -f %M (KiB)
    timed /usr/bin/time -f %M -o "$W/.rss" "$@"
    RSS=$(awk '{ v = $1 } END { printf "%.0f", v / 1024 }' "$W/.rss")
}
median() { # median LABEL VALUES...: also logs the single runs on stderr, to judge noise
    say "$1 runs: ${*:2}"
    printf '%s\n' "${@:2}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
max() { printf '%s\n' "$@" | sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; } # le A B: A <= B

MREGQ=("$MREG" --no-progress -q) # an array, so /usr/bin/time can run it too
fresh_registry() { # fresh_registry DIR: a brand-new registry, so nothing is deduplicated
    rm -rf "$1"
    "${MREGQ[@]}" init "$1" >/dev/null || die "mreg init $1 failed"
}
b3sum_all() { find "$1" -type f -print0 | xargs -0 b3sum --num-threads 2; }
cp_sync() { cp -r "$1" "$2" && sync; }
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 b3sum | b3sum); } # one hash of a folder

# Table rows: workload | seconds | ratio | baseline. Targets: PASS/MISS lines.
ROWS=()
TARGETS=()
row() { ROWS+=("$(printf '%-46s %10s  %-7s %s' "$1" "$2" "${3:-}" "${4:-}")"); }
target() { # target NAME VALUE LIMIT SHOWN
    if le "$2" "$3"; then TARGETS+=("PASS  $1: $4"); else TARGETS+=("MISS  $1: $4"); fi
}

# ---------------------------------------------------------------------------
# Data generation: deterministic (seeded) and fast. Incompressible bytes come from
# AES-CTR over zeros keyed by a seed (~1 GB/s); the rest from a small Python script.
# ---------------------------------------------------------------------------
prng() { # prng SEED BYTES: deterministic incompressible bytes on stdout
    # (openssl is cut off by head, so its SIGPIPE status is ignored)
    { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null || true; } | head -c "$2"
}
gen() { # gen KIND DIR [SEED]: python part of the generator
    python3 - "$@" <<'PY'
import json, os, random, sys
kind, root = sys.argv[1], sys.argv[2]
MIB = 1 << 20
if kind == "bf16":
    # 256 MiB like bf16 weights: low byte random, high (sign+exponent) byte drawn from
    # 4 values, so about 10 of 16 bits carry entropy and zstd saves roughly 30%.
    rng = random.Random(16)
    table = bytes(0x3C + (i % 4) for i in range(256))
    with open(os.path.join(root, "model-extra.bf16.bin"), "wb") as f:
        for _ in range(256 // 4):
            buf = bytearray(4 * MIB)
            buf[0::2] = rng.randbytes(2 * MIB)
            buf[1::2] = rng.randbytes(2 * MIB).translate(table)
            f.write(buf)
elif kind == "text":
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    config = {"architectures": ["BenchForCausalLM"], "hidden_size": 4096,
              "num_hidden_layers": 32, "vocab_size": 120000, "seed": rng.random()}
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if len(sys.argv) > 3:  # re-seeding only rewrites config.json
        sys.exit()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab, n, size = {}, 0, 0
    while size < MIB:  # ~1 MiB of JSON text
        word = "".join(rng.choice(letters) for _ in range(rng.randint(2, 12))) + str(n)
        vocab[word] = n
        size += len(word) + 12
        n += 1
    with open(os.path.join(root, "tokenizer.json"), "w") as f:
        json.dump({"version": "1.0", "model": {"type": "BPE", "vocab": vocab}}, f, indent=1)
    with open(os.path.join(root, "generation_config.json"), "w") as f:
        json.dump({"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 512}, f)
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write("# bench model\n\nSynthetic weights for the mreg benchmark.\n" * 20)
elif kind == "small":
    # 5,000 files of 4-64 KiB in 8x5 folders: a third random, a third log-like text,
    # a third JSON records (mixed compressibility), ~170 MB in all.
    rng = random.Random(5)
    for i in range(5000):
        d = os.path.join(root, f"part{i % 8}", f"shard{i % 5}")
        os.makedirs(d, exist_ok=True)
        size = rng.randint(4 * 1024, 64 * 1024)
        if i % 3 == 0:
            data = rng.randbytes(size)
        elif i % 3 == 1:
            line = f"{i} step={rng.randint(0, 10**6)} loss={rng.random():.6f} lr=3e-4\n"
            data = (line * (size // len(line) + 1)).encode()[:size]
        else:
            recs = [json.dumps({"id": j, "v": rng.random(), "tag": rng.choice("abcdef")})
                    for j in range(size // 40 + 1)]
            data = "\n".join(recs).encode()[:size]
        with open(os.path.join(d, f"f{i:05}.dat"), "wb") as f:
            f.write(data)
PY
}
make_model() { # ~1.3 GB: 2 x 512 MiB incompressible, 256 MiB bf16-like, small text
    mkdir -p "$1"
    prng weights-1 $((512 * MIB)) >"$1/model-00001.safetensors"
    prng weights-2 $((512 * MIB)) >"$1/model-00002.safetensors"
    gen bf16 "$1"
    gen text "$1"
}
make_small() { mkdir -p "$1"; gen small "$1"; }

# ---------------------------------------------------------------------------
# One data set: baselines, then mreg, with the same files. Expensive steps are
# medians of 3, cheap ones of 5, the incremental push a single run. Baseline and mreg
# runs alternate so that drift on a shared machine hits both.
# ---------------------------------------------------------------------------
bench_set() { # bench_set LABEL MAKER
    local label=$1 src="$W/$1" dst="$W/dst" i
    say "$label: generating data"
    local g0=$SECONDS
    "$2" "$src"
    local files bytes
    files=$(find "$src" -type f | wc -l)
    bytes=$(du -sb "$src" | cut -f1)
    say "$label: $files files, $bytes bytes, generated in $((SECONDS - g0)) s"
    local v1sum; v1sum=$(tree_sum "$src") # to check the pull of m@1 against, untimed
    ROWS+=("-- $label: $files files, $(awk -v b="$bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }')")

    # Hashing baseline: b3sum over every file (what mreg must at least do on a push).
    local b3=()
    for i in 1 2 3 4 5; do timed b3sum_all "$src"; b3+=("$T"); done
    local b3_t; b3_t=$(median "$label b3sum" "${b3[@]}")

    # Fresh push vs `cp -r && sync`: a push stores durably, so its baseline is a copy
    # that reaches the disk. Each push goes into a brand-new registry.
    local cps=() push=() push_rss=()
    for i in 1 2 3; do
        rm -rf "$dst"; timed cp_sync "$src" "$dst"; cps+=("$T")
        rm -rf "$dst"
        fresh_registry "$W/reg-$label-$i"
        timed_rss env MREG_REGISTRY="$W/reg-$label-$i" "${MREGQ[@]}" push "$src" --model m
        push+=("$T"); push_rss+=("$RSS")
        [[ $i == 1 ]] || rm -rf "$W/reg-$label-$i" # keep one registry for the rest
    done
    local cps_t push_t
    cps_t=$(median "$label cp -r && sync" "${cps[@]}")
    push_t=$(median "$label fresh push" "${push[@]}")
    export MREG_REGISTRY="$W/reg-$label-1"

    # No-change push: the stat cache should vouch for every file, so nothing is re-read.
    # The first re-push is shown apart; the target uses the median of the next 5.
    local nc=()
    timed "${MREGQ[@]}" push "$src" --model m; local nc_first=$T
    for i in 1 2 3 4 5; do timed "${MREGQ[@]}" push "$src" --model m; nc+=("$T"); done
    local nc_t; nc_t=$(median "$label no-change push (first: $nc_first; next 5)" "${nc[@]}")

    # Incremental push (model only, single run: it changes the folder): one weight file
    # rewritten with new content, and config.json changed.
    local incr_t="" incr_rss=0
    if [[ $label == model ]]; then
        prng weights-1b $((512 * MIB)) >"$src/model-00001.safetensors"
        gen text "$src" 2
        timed_rss "${MREGQ[@]}" push "$src" --model m; incr_t=$T; incr_rss=$RSS
    fi

    # Pull of version 1 vs `cp -r` (no sync: a pull is not durable unless --durable).
    # Fresh target each time; the first pull is checked against a b3sum of version 1.
    # Both are cheap and this VM is noisy on them, so medians of 5.
    local cpp=() cpv=() pull=() pull_rss=()
    for i in 1 2 3 4 5; do
        rm -rf "$dst"; timed cp -r "$src" "$dst"; cpp+=("$T")
        # A pull also verifies every byte: `cp -r` + b3sum of the copy is that baseline.
        local cp_t=$T; timed b3sum_all "$dst"; cpv+=("$(awk -v a="$cp_t" -v b="$T" 'BEGIN { print a + b }')")
        rm -rf "$dst"
        timed_rss "${MREGQ[@]}" pull m@1 --to "$dst"; pull+=("$T"); pull_rss+=("$RSS")
        if [[ $i == 1 && $(tree_sum "$dst") != "$v1sum" ]]; then
            die "$label: pulled m@1 differs from the folder that was pushed"
        fi
    done
    rm -rf "$dst"
    local cpp_t cpv_t pull_t
    cpp_t=$(median "$label cp -r" "${cpp[@]}")
    cpv_t=$(median "$label cp -r, then b3sum" "${cpv[@]}")
    pull_t=$(median "$label pull" "${pull[@]}")
    unset MREG_REGISTRY

    local peak; peak=$(max "${push_rss[@]}" "$incr_rss" "${pull_rss[@]}")
    row "cp -r && sync" "$cps_t"
    row "cp -r" "$cpp_t"
    row "b3sum --num-threads 2 (all files)" "$b3_t"
    row "cp -r, then b3sum of the copy" "$cpv_t"
    row "mreg push, fresh registry" "$push_t" "$(ratio "$push_t" "$cps_t")" "cp -r && sync"
    row "  same, vs hashing alone" "$push_t" "$(ratio "$push_t" "$b3_t")" "b3sum"
    row "mreg push, no change (first re-push)" "$(awk -v t="$nc_first" 'BEGIN { printf "%.1f ms", t * 1000 }')"
    row "mreg push, no change (median of next 5)" "$(awk -v t="$nc_t" 'BEGIN { printf "%.1f ms", t * 1000 }')" \
        "$(ratio "$nc_t" 0.050)" "50 ms target"
    if [[ -n $incr_t ]]; then
        row "mreg push, 1 weight + config changed [1 run]" "$incr_t" "$(ratio "$incr_t" "$cps_t")" "cp -r && sync (whole folder)"
    fi
    row "mreg pull m@1, fresh target" "$pull_t" "$(ratio "$pull_t" "$cpp_t")" "cp -r"
    row "  same, vs a verified copy" "$pull_t" "$(ratio "$pull_t" "$cpv_t")" "cp -r, then b3sum"
    ROWS+=("peak RSS $label: push $(max "${push_rss[@]}") MiB, pull $(max "${pull_rss[@]}") MiB${incr_t:+, incremental push $incr_rss MiB}")

    target "$label: fresh push <= 1.5x cp -r && sync" "$push_t" "$(awk -v b="$cps_t" 'BEGIN { print 1.5 * b }')" "$(ratio "$push_t" "$cps_t")"
    target "$label: no-change push <= 50 ms" "$nc_t" 0.050 "$(awk -v t="$nc_t" 'BEGIN { printf "%.1f ms", t * 1000 }')"
    target "$label: pull <= 1.5x cp -r" "$pull_t" "$(awk -v b="$cpp_t" 'BEGIN { print 1.5 * b }')" "$(ratio "$pull_t" "$cpp_t")"
    target "$label: peak RSS <= 150 MiB" "$peak" 150 "$peak MiB"

    rm -rf "$src" "$W/reg-$label-1"
}

# ---------------------------------------------------------------------------
# Run both data sets and print the table.
# ---------------------------------------------------------------------------
echo "mreg: $("$MREG" --version)   nproc: $(nproc)   fs: $(stat -f -c %T "$W")   workdir: $W"
bench_set model make_model
bench_set small make_small

printf '%-46s %10s  %-7s %s\n' workload seconds ratio baseline
printf '%s\n' "${ROWS[@]}"
echo "(warm page cache; sync before each timed step; medians of 3 (cp -r && sync, fresh push)"
echo " or 5 (b3sum, cp -r, pull, no-change push) unless marked [1 run]; single runs on stderr)"
echo
echo "targets:"
printf '  %s\n' "${TARGETS[@]}"
