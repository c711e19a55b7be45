#!/usr/bin/env bash
# Live migration with CRIU: what talos adds to CRIU's own time (issue 12).
#
#   bench/criu-migrate.sh            # 64 MiB and 1 GiB
#   SIZES="64" RUNS=5 bench/criu-migrate.sh
#
# For a state-keeping process (corpus statekeeper --tick 1000 --heap-mib N:
# N MiB of heap it hashes every tick, threads, a counter), in the same run:
#   plain  criu dump -t PID -D DIR, then criu restore -D DIR -d
#          (the process dies at the dump and comes back; no check at all)
#   talos  talos migrate live --pid PID ... --to ADDR against
#          talos migrate serve --restore-into ... --once on loopback:
#          criu dump --leave-stopped, seal (introspection of the code and
#          flow, state digest), the image stream over TCP checked as it
#          arrives, verify (binary, CFG, state digest of the received
#          images), commit, kill of the frozen source, criu restore
#          --leave-stopped, the check of the restored process (code, flow,
#          registers, memory digest of the live process), SIGCONT.
# Both on one machine, so the stream is loopback and the restore gets the
# same pid back once the source is gone. Then, on the 1 GiB image
# directory: talos digest DIR against b3sum of its pages-*.img (alternating
# pairs).
#
# Prints each run and the medians. The machine is shared and has 2 cores:
# compare the ratios of the same run. Environment: SIZES (MiB, default
# "64 1024"), RUNS (default 3), TALOS (default target/release/talos, built
# first). Needs root, criu >= 4.1, b3sum, python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs="${RUNS:-3}"
sizes="${SIZES:-64 1024}"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_needs criu-migrate.sh criu b3sum python3
[[ $(id -u) == 0 ]] || { echo "criu-migrate.sh: CRIU needs root" >&2; exit 2; }
talos="$(bench_talos)"
bash "$root/corpus/dumps/make-dumps.sh"
work="$root/target/criu-bench"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$root/corpus/out/dumps/statekeeper" ./statekeeper
: > empty   # stdin of the process (a file of our own: CRIU checks its size)

now() { date +%s.%N; }
pid=""
cleanup() {
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
  [[ -n ${serve_pid:-} ]] && kill "$serve_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Start statekeeper with N MiB and wait for its first tick. It is this
# script's child (a session leader with no terminal: setsid does not fork
# here), so a killed one is reaped at once and its pid is free for the
# restore.
start() {
  rm -f sk.out
  setsid ./statekeeper --tick 10000 --heap-mib "$1" <empty >sk.out 2>&1 &
  pid=$!
  for _ in $(seq 1200); do grep -q '^tick=' sk.out 2>/dev/null && return 0; sleep 0.05; done
  echo "statekeeper did not start" >&2; exit 1
}
gone() { for _ in $(seq 1000); do [[ -d /proc/$pid ]] || return 0; sleep 0.01; done; echo "pid $pid is still taken" >&2; return 1; }
stop() { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; gone; }

"$talos" keygen -o owner >/dev/null
"$talos" reference statekeeper --app statekeeper --key owner -o sk.ref >/dev/null
hosts() {
  rm -rf S T
  for h in S T; do
    "$talos" migrate init --state-dir $h >/dev/null
    "$talos" migrate trust --state-dir $h --role owner owner.pub >/dev/null
  done
  "$talos" migrate trust --state-dir S --role peer T/host.pub >/dev/null
  "$talos" migrate trust --state-dir T --role peer S/host.pub >/dev/null
  "$talos" migrate register --state-dir S --app statekeeper >/dev/null
}

declare -A plain_t talos_t
for mib in $sizes; do
  for r in $(seq "$runs"); do
    # plain CRIU
    start "$mib"
    sync; rm -rf img
    mkdir img
    t0=$(now)
    criu dump -t "$pid" -D img -o dump.log
    wait "$pid" 2>/dev/null || true
    criu restore -D img -d -o restore.log
    t1=$(now)
    stop
    p=$(python3 -c "print($t1 - $t0)")
    plain_t[$mib]+="$p "

    # talos live + serve
    hosts
    start "$mib"
    sync
    # The last run's serve.err must not be read before the new serve
    # truncates it (that gave an empty address).
    rm -f serve.err serve.json
    "$talos" migrate serve --state-dir T --listen 127.0.0.1:0 --binary statekeeper \
      --restore-into T/images --once --format json > serve.json 2> serve.err &
    serve_pid=$!
    addr=""
    for _ in $(seq 600); do
      addr=$(sed -n 's/.*listening on //p' serve.err 2>/dev/null)
      [[ -n $addr ]] && break
      sleep 0.05
    done
    [[ -n $addr ]] || { echo "serve did not start" >&2; cat serve.err >&2; exit 1; }
    t0=$(now)
    "$talos" migrate live --state-dir S --pid "$pid" --app statekeeper --reference sk.ref \
      --to "$addr" --format json > live.json
    t1=$(now)
    wait "$serve_pid"; serve_pid=""
    grep -q '"verdict": "accepted"' live.json || { cat live.json serve.json >&2; exit 1; }
    # The restored process ticks on.
    sleep 1.2
    grep -c '^tick=' sk.out >/dev/null
    q=$(python3 -c "print($t1 - $t0)")
    talos_t[$mib]+="$q "
    if [[ $mib == "${sizes##* }" && $r == "$runs" ]]; then
      last_images=$(ls -d T/images/statekeeper.epoch1)
      keep_pid=$pid
    else
      stop
    fi
    printf 'size %5s MiB run %s: plain criu dump+restore %.3f s, talos live+serve %.3f s\n' "$mib" "$r" "$p" "$q"
    python3 - <<'PY'
import json
s = json.load(open("live.json")).get("times-ms", {})
t = json.load(open("serve.json")).get("times-ms", {})
print("    source ms:", ", ".join(f"{k} {v}" for k, v in s.items()))
print("    target ms:", ", ".join(f"{k} {v}" for k, v in t.items()))
PY
  done
done

echo
printf '%-10s %-22s %-22s %s\n' "state" "criu dump+restore" "talos live+serve" "talos adds"
for mib in $sizes; do
  python3 - "$mib" "${plain_t[$mib]}" "${talos_t[$mib]}" <<'PY'
import statistics, sys
mib, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"{mib + ' MiB':<10} {ma:>8.3f} s (min {min(a):.3f}) {mb:>8.3f} s (min {min(b):.3f}) {100 * (mb - ma) / ma:+.0f}% (minimums {100 * (min(b) - min(a)) / min(a):+.0f}%)")
PY
done

# talos digest of the last (largest) image directory against b3sum of its
# pages. The two alternate, 12 pairs after a warm-up, and each pair gives a
# ratio: on this shared machine the load moves within a minute, so paired
# runs compare what sequential hyperfine batches do not.
pid=$keep_pid
stop
pages=$(ls "$last_images"/pages-*.img)
echo
echo "digest of $last_images ($(du -sh "$last_images" | cut -f1)), 12 alternating pairs:"
b3sum --num-threads 2 $pages >/dev/null; "$talos" digest "$last_images" >/dev/null
python3 - "$talos" "$last_images" $pages <<'PY'
import statistics, subprocess, sys, time
talos, d, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
def run(cmd):
    t = time.perf_counter(); subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL); return time.perf_counter() - t
pairs = []
for _ in range(12):
    b = run(["b3sum", "--num-threads", "2", *pages])
    t = run([talos, "digest", d])
    pairs.append((b, t))
bs, ts = [p[0] for p in pairs], [p[1] for p in pairs]
ratios = sorted(b / t for b, t in pairs)
print(f"b3sum pages-*.img median {statistics.median(bs) * 1e3:.0f} ms, talos digest DIR median {statistics.median(ts) * 1e3:.0f} ms")
print(f"talos at {statistics.median(ratios):.2f}x b3sum's speed (median of pair ratios; quartiles {ratios[3]:.2f}-{ratios[8]:.2f})")
PY
