#!/usr/bin/env bash
# State digest throughput next to b3sum, on the same file, in the same run.
#
#   bench/digest.sh [SIZE_GIB]        (default 2)
#
# Makes (or reuses) target/digest-bench/image-<SIZE>GiB.bin, SIZE GiB of
# AES-128-CTR keystream (incompressible, reproducible), warms the page
# cache, then runs hyperfine ROUNDS times over:
#   b3sum FILE                                   (all cores, mmap: the reference)
#   talos digest --raw FILE --base 0x7f0000000000  (state digest, all cores)
#   talos digest ... --no-prefetch                 (without MADV_POPULATE_READ)
#   talos digest ... --format json                 (with the 37 MiB/GiB page list)
# and prints, per round and overall, each command's throughput and its ratio to
# b3sum of the same round. The machine is shared: compare ratios, and read the
# best round and the range, not one figure.
#
# Environment: ROUNDS (default 3), RUNS per command per round (default 10),
# TALOS (binary; default target/release/talos, built if missing), B3SUM
# (default b3sum), KEEP_JSON=DIR (keep hyperfine's JSON exports).
# Needs: openssl, hyperfine, b3sum, python3 (stdlib only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
size_gib="${1:-2}"
rounds="${ROUNDS:-3}"
runs="${RUNS:-10}"
b3sum="${B3SUM:-b3sum}"
talos="${TALOS:-$root/target/release/talos}"

for tool in openssl hyperfine python3 "$b3sum"; do
    command -v "$tool" >/dev/null || { echo "bench/digest.sh: needs $tool" >&2; exit 2; }
done
if [[ -z "${TALOS:-}" ]]; then
    (cd "$root" && cargo build --release -p talos-analyzer --quiet)
fi

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
# Warm the page cache (twice: the first pass may read from disk).
cat "$file" >/dev/null
cat "$file" >/dev/null

exports="${KEEP_JSON:-$(mktemp -d)}"
mkdir -p "$exports"
echo "file: $file ($bytes bytes); $(nproc) CPUs; $("$b3sum" --version); $("$talos" --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
    hyperfine -N --warmup 2 --runs "$runs" --style basic \
        --export-json "$exports/round-$r.json" \
        -n b3sum "$b3sum $file" \
        -n talos "$talos digest --raw $file --base 0x7f0000000000" \
        -n talos-no-prefetch "$talos digest --raw $file --base 0x7f0000000000 --no-prefetch" \
        -n talos-json "$talos digest --raw $file --base 0x7f0000000000 --format json" \
        >"$exports/round-$r.txt"
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$bytes" "$exports" "$rounds" <<'EOF'
import json, sys
size, d, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
names = ["b3sum", "talos", "talos-no-prefetch", "talos-json"]
per = {n: [] for n in names}      # (mean, min) per round
for r in range(1, rounds + 1):
    res = {x["command"]: x for x in json.load(open(f"{d}/round-{r}.json"))["results"]}
    for n in names:
        per[n].append((res[n]["mean"], res[n]["min"]))
gbs = lambda t: size / t / 1e9
print(f"\n{'command':<18} {'GB/s best':>9} {'GB/s mean':>18}   ratio to b3sum (same round): best min-time, mean-time range")
for n in names:
    best = min(m for _, m in per[n])
    means = [m for m, _ in per[n]]
    ratios_min = [per["b3sum"][i][1] / per[n][i][1] for i in range(rounds)]
    ratios_mean = [per["b3sum"][i][0] / per[n][i][0] for i in range(rounds)]
    print(f"{n:<18} {gbs(best):9.2f} {gbs(max(means)):7.2f} .. {gbs(min(means)):5.2f}   "
          f"{max(ratios_min):.2f}x   {min(ratios_mean):.2f}x .. {max(ratios_mean):.2f}x")
EOF
