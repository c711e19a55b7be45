#!/usr/bin/env bash
# Overhead of the migration gate next to hashing the state (issue 5 targets).
#
#   bench/migrate.sh
#
# 1. Verify of a 64 MiB state beyond the digest time (target: < 50 ms).
#    Builds a tiny C program that holds 64 MiB of random bytes on its heap,
#    writes a core of it with `talos snapshot` (about 66 MiB), and times, in
#    the same hyperfine runs:
#      talos digest CORE                      (the state digest alone)
#      talos migrate verify ... --state CORE  (the whole target check:
#        reference and bundle signatures, binary BLAKE3 and CFG digest,
#        state measurement, ledger write with fsync, receipt written)
#    A --prepare step gives every verify a fresh challenge and bundle
#    (abort, challenge, seal), so each timed verify is accepted.
# 2. seal + verify + commit + launch of the corpus program's dump
#    (corpus/out/dumps/sk.gcore-7f.core, statekeeper) against b3sum of the
#    dump and talos digest of it (target: within 2x). The four commands run
#    in one script per timed run, on state directories the --prepare step
#    makes fresh (init, trust, register, challenge). The same for the 64 MiB
#    core. `talos introspect DUMP` runs alongside: seal must introspect the
#    dump (code against the binaries, execution flow), and that check, not
#    the gate, is most of the cycle.
#
# Prints medians and minimums (ms) and the ratios. The machine is shared
# and has 2 cores: compare ratios from the same run, not absolute times.
# Environment: RUNS (default 15), TALOS (default target/release/talos,
# built first). Needs: hyperfine, b3sum, gcc, python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs="${RUNS:-15}"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_needs migrate.sh hyperfine b3sum gcc python3
talos="$(bench_talos)"
sk_core="$root/corpus/out/dumps/sk.gcore-7f.core"
if [[ ! -f $sk_core ]]; then
  bash "$root/corpus/dumps/make-dumps.sh"
fi
sk_bin="$(sed -n 's/^SK_BIN=//p' "$root/corpus/out/dumps/manifest.env")"

work="$root/target/migrate-bench"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# --- the 64 MiB program and its core ---------------------------------------
cat > big.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
  size_t n = 64u << 20;
  unsigned char *p = malloc(n);
  FILE *r = fopen("/dev/urandom", "rb");
  if (!p || !r || fread(p, 1, n, r) != n) return 1;
  puts("ready");
  fflush(stdout);
  pause();
  return p[n / 2];
}
EOF
gcc -O2 -g -o big big.c
mkfifo big.out
./big > big.out &
big_pid=$!
trap 'kill $big_pid 2>/dev/null || true' EXIT
read -r _ < big.out
echo 0x7f > "/proc/$big_pid/coredump_filter" || true
"$talos" snapshot --pid "$big_pid" -o big.core
kill "$big_pid"; wait "$big_pid" 2>/dev/null || true
trap - EXIT

# --- keys, reference, hosts --------------------------------------------------
"$talos" keygen -o owner >/dev/null
"$talos" reference big --app big --key owner -o big.ref >/dev/null
"$talos" reference "$sk_bin" --app statekeeper --key owner -o sk.ref >/dev/null

# hosts DIR_S DIR_T APP: fresh source and target that pin each other.
cat > hosts.sh <<EOF
#!/usr/bin/env bash
set -e
rm -rf "\$1" "\$2"
t="$talos"
\$t migrate init --state-dir "\$1" >/dev/null
\$t migrate init --state-dir "\$2" >/dev/null
for h in "\$1" "\$2"; do \$t migrate trust --state-dir "\$h" --role owner owner.pub >/dev/null; done
\$t migrate trust --state-dir "\$1" --role peer "\$2/host.pub" >/dev/null
\$t migrate trust --state-dir "\$2" --role peer "\$1/host.pub" >/dev/null
\$t migrate register --state-dir "\$1" --app "\$3" >/dev/null
\$t migrate challenge --state-dir "\$2" --app "\$3" -o "\$1.chal" >/dev/null
EOF
chmod +x hosts.sh

# cycle.sh S T APP REF DUMP BIN: the four gate commands of one migration.
cat > cycle.sh <<EOF
#!/usr/bin/env bash
set -e
t="$talos"
\$t migrate seal --state-dir "\$1" --app "\$3" --reference "\$4" --dump "\$5" --challenge "\$1.chal" -o "\$1.bundle" >/dev/null
\$t migrate verify --state-dir "\$2" --bundle "\$1.bundle" --reference "\$4" --binary "\$6" --state "\$5" -o "\$1.receipt" >/dev/null
\$t migrate commit --state-dir "\$1" --receipt "\$1.receipt" -o "\$1.release" >/dev/null
\$t migrate launch --state-dir "\$2" --release "\$1.release" >/dev/null
EOF
chmod +x cycle.sh

# reseal.sh S T APP REF DUMP: abort, new challenge, new bundle (for verify runs).
cat > reseal.sh <<EOF
#!/usr/bin/env bash
set -e
t="$talos"
\$t migrate abort --state-dir "\$1" --app "\$3" >/dev/null
\$t migrate challenge --state-dir "\$2" --app "\$3" -o "\$1.chal" >/dev/null
\$t migrate seal --state-dir "\$1" --app "\$3" --reference "\$4" --dump "\$5" --challenge "\$1.chal" -o "\$1.bundle" >/dev/null
EOF
chmod +x reseal.sh

cat "$sk_core" big.core > /dev/null  # warm the page cache
ls -l big.core "$sk_core" | awk '{print $5, $9}'

# --- 1. verify of a 64 MiB state beyond the digest ---------------------------
./hosts.sh vs vt big
hyperfine -N --warmup 2 --runs "$runs" --export-json verify.json \
  --prepare "./reseal.sh vs vt big big.ref big.core" \
  "$talos digest big.core" \
  "$talos migrate verify --state-dir vt --bundle vs.bundle --reference big.ref --binary big --state big.core -o vs.receipt" \
  >/dev/null

# --- 2. seal + verify + commit + launch against hashing the dump --------------
for which in sk big; do
  if [[ $which == sk ]]; then dump="$sk_core"; ref=sk.ref; bin="$sk_bin"; app=statekeeper
  else dump=big.core; ref=big.ref; bin=big; app=big; fi
  hyperfine -N --warmup 2 --runs "$runs" --export-json "cycle-$which.json" \
    --prepare "./hosts.sh cs ct $app" \
    "b3sum $dump" \
    "$talos digest $dump" \
    "$talos introspect $dump" \
    "./cycle.sh cs ct $app $ref $dump $bin" \
    >/dev/null
done

python3 - "$runs" <<'EOF'
import json, statistics, sys
def load(p):
    r = json.load(open(p))["results"]
    return [(x["command"], [t * 1000 for t in x["times"]]) for x in r]
def show(name, rows):
    print(f"\n{name}")
    for cmd, ts in rows:
        print(f"  median {statistics.median(ts):8.1f} ms  min {min(ts):8.1f} ms  {cmd.split('/')[-1][:90]}")
v = load("verify.json")
dig, ver = v[0][1], v[1][1]
show("1. verify of the 64 MiB core next to its state digest", v)
print(f"  verify beyond the digest: median {statistics.median(ver) - statistics.median(dig):.1f} ms, "
      f"min {min(ver) - min(dig):.1f} ms (target < 50 ms)")
for which, label in (("sk", "statekeeper gcore (7 MiB)"), ("big", "64 MiB core")):
    c = load(f"cycle-{which}.json")
    b3, td, ti, cyc = c[0][1], c[1][1], c[2][1], c[3][1]
    m = statistics.median
    show(f"2. seal+verify+commit+launch, {label}", c)
    print(f"  cycle / b3sum: median {m(cyc) / m(b3):.2f}x, "
          f"min {min(cyc) / min(b3):.2f}x; cycle / talos digest: median "
          f"{m(cyc) / m(td):.2f}x (target within 2x)")
    print(f"  cycle / (talos introspect + 2 x talos digest): median "
          f"{m(cyc) / (m(ti) + 2 * m(td)):.2f}x; cycle beyond them: median "
          f"{m(cyc) - m(ti) - 2 * m(td):.1f} ms")
EOF
