#!/usr/bin/env bash
# State digest throughput next to b3sum, on the same file, in the same run.
#
#   bench/digest.sh [SIZE_GIB]        (default 2)
#
# Makes (or reuses) target/digest-bench/image-<SIZE>GiB.bin, SIZE GiB of
# AES-128-CTR keystream (incompressible, reproducible), warms the page
# cache, then runs hyperfine ROUNDS times (few runs each, so that the
# commands interleave and share the machine's noise) over:
#   b3sum FILE                                   (all cores, mmap: the reference)
#   talos digest --raw FILE --base 0x7f0000000000  (state digest, all cores)
#   talos digest ... --no-prefetch                 (without MADV_POPULATE_READ)
#   talos digest ... --format json                 (with the 37 MiB/GiB page list)
# and prints each command's throughput (best and median of the rounds) and its
# ratio to b3sum within the same round: wall-clock (b3sum time / talos time,
# above 1 = talos faster) and CPU time (user+sys), as median, best and range
# over the rounds. The machine is shared: compare ratios, not GB/s.
#
# With CORE=FILE (an ELF core) or CORE=auto, each round also runs
#   b3sum CORE  and  talos digest CORE --rseq-offset 0x920
# (talos-core is compared with b3sum-core). CORE=auto makes
# target/digest-bench/python-<SIZE>GiB.core: a python3 process holding the
# image in a bytearray, stopped, written by `talos snapshot`.
#
# Last, peak anonymous memory (RssAnon, sampled from /proc/PID/status every
# 2 ms) of talos digest in text and JSON form; the mapped dump itself is page
# cache (RssFile), as for b3sum.
#
# Environment: ROUNDS (default 10), RUNS per command per round (default 3),
# TALOS (binary; default target/release/talos, built first), B3SUM
# (default b3sum), KEEP_JSON=DIR (keep hyperfine's JSON exports).
# Needs: openssl, hyperfine, b3sum, python3 (stdlib only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
size_gib="${1:-2}"
rounds="${ROUNDS:-10}"
runs="${RUNS:-3}"
b3sum="${B3SUM:-b3sum}"

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_needs bench/digest.sh openssl hyperfine python3 "$b3sum"
talos="$(bench_talos)"

dir="$root/target/digest-bench"
mkdir -p "$dir"
file="$dir/image-${size_gib}GiB.bin"
bytes=$((size_gib * 1024 * 1024 * 1024))
if [[ ! -f "$file" || "$(stat -c %s "$file")" -ne "$bytes" ]]; then
    echo "making $file ($size_gib GiB of AES-CTR keystream)" >&2
    openssl enc -aes-128-ctr -pass pass:talos-digest-bench -nosalt -pbkdf2 \
        </dev/zero 2>/dev/null | head -c "$bytes" >"$file.tmp"
    mv "$file.tmp" "$file"
fi
core="${CORE:-}"
if [[ "$core" == auto ]]; then
    core="$dir/python-${size_gib}GiB.core"
    if [[ ! -f "$core" ]]; then
        echo "making $core (talos snapshot of a python3 holding the image)" >&2
        ready="$(mktemp)"
        python3 -c "
import sys, time
b = bytearray(open(sys.argv[1], 'rb').read())
print('ready', flush=True)
time.sleep(3600)
" "$file" >"$ready" &
        pid=$!
        for _ in $(seq 1 120); do grep -q ready "$ready" && break; sleep 1; done
        kill -STOP "$pid"
        "$talos" snapshot --pid "$pid" -o "$core"
        kill -9 "$pid"
        rm -f "$ready"
    fi
fi
# Warm the page cache (twice: the first pass may read from disk).
for f in "$file" $core; do
    cat "$f" >/dev/null
    cat "$f" >/dev/null
done
core_cmds=()
if [[ -n "$core" ]]; then
    core_cmds=(-n b3sum-core "$b3sum $core"
               -n talos-core "$talos digest $core --rseq-offset 0x920")
fi

exports="${KEEP_JSON:-$(mktemp -d)}"
mkdir -p "$exports"
echo "file: $file ($bytes bytes); $(nproc) CPUs; $("$b3sum" --version); $("$talos" --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
    hyperfine -N --warmup 1 --runs "$runs" --style basic \
        --export-json "$exports/round-$r.json" \
        -n b3sum "$b3sum $file" \
        -n talos "$talos digest --raw $file --base 0x7f0000000000" \
        -n talos-no-prefetch "$talos digest --raw $file --base 0x7f0000000000 --no-prefetch" \
        -n talos-json "$talos digest --raw $file --base 0x7f0000000000 --format json" \
        "${core_cmds[@]}" \
        >"$exports/round-$r.txt"
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$bytes" "$exports" "$rounds" <<'EOF'
import json, statistics, sys
size, d, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
names = ["b3sum", "talos", "talos-no-prefetch", "talos-json", "b3sum-core", "talos-core"]
rows = {n: [] for n in names}   # per round: (mean wall, min wall, mean cpu)
for r in range(1, rounds + 1):
    res = {x["command"]: x for x in json.load(open(f"{d}/round-{r}.json"))["results"]}
    names = [n for n in names if n in res]
    for n in names:
        x = res[n]
        rows[n].append((x["mean"], x["min"], x["user"] + x["system"]))
gbs = lambda t: size / t / 1e9
print(f"\n{'command':<18} {'GB/s best':>9} {'median':>7}   {'wall ratio to b3sum':<27} {'CPU-time ratio to b3sum'}")
print(f"{'':<18} {'':>9} {'':>7}   {'median  best  range':<27} {'median  range'}")
for n in names:
    ref = "b3sum-core" if n.endswith("-core") else "b3sum"
    best = gbs(min(m for _, m, _ in rows[n]))
    med = gbs(statistics.median(m for m, _, _ in rows[n]))
    wall = [rows[ref][i][0] / rows[n][i][0] for i in range(rounds)]
    best_ratio = max(rows[ref][i][1] / rows[n][i][1] for i in range(rounds))
    cpu = [rows[ref][i][2] / rows[n][i][2] for i in range(rounds)]
    print(f"{n:<18} {best:9.2f} {med:7.2f}   {statistics.median(wall):5.2f}x {best_ratio:5.2f}x "
          f"{min(wall):.2f}-{max(wall):.2f}x   {statistics.median(cpu):5.2f}x {min(cpu):.2f}-{max(cpu):.2f}x")
if "talos-core" in names:
    print("(-core rows: GB/s of the image size; ratios to b3sum-core)")
EOF

echo
for fmt in text json; do
    python3 - "$talos" digest --raw "$file" --base 0x7f0000000000 --format "$fmt" <<'EOF'
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peak = {"RssAnon": 0, "RssFile": 0}
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            k = line.split(":")[0]
            if k in peak:
                peak[k] = max(peak[k], int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.002)
print(f"peak memory, --format {sys.argv[-1]}: RssAnon {peak['RssAnon'] / 1024:.1f} MiB, "
      f"RssFile {peak['RssFile'] / 1024:.1f} MiB (exit {p.returncode})")
EOF
done
