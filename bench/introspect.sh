#!/usr/bin/env bash
# Time `talos introspect` on the python3 core made with coredump_filter 0x7f
# (corpus/dumps/make-dumps.sh), in its three modes, plus a live read and a
# snapshot of a running python3, next to gdb's gcore of the same process.
# Usage: bench/introspect.sh   (needs hyperfine, gdb, GNU time)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="$root/target/release/talos"
cargo build --release --manifest-path "$root/Cargo.toml" -p talos-analyzer --quiet
bash "$root/corpus/dumps/make-dumps.sh"
core="$root/corpus/out/dumps/python3.gcore-7f.core"
echo "machine: $(nproc) cores, $(uname -r); $("$talos" --version)"
echo "core: $core ($(stat -c %s "$core") bytes)"
"$talos" introspect "$core" | sed -n '1,3p'
hyperfine --style basic -N -w 3 -r 20 -i \
  "$talos introspect $core" \
  "$talos introspect $core --no-flow" \
  "$talos introspect $core --format json"
hyperfine --style basic -N -w 1 -r 3 -i "$talos introspect $core --flow-cfg"
for args in "" "--flow-cfg"; do
  /usr/bin/time -f "peak RSS %M KiB, %e s (introspect $args)" "$talos" introspect "$core" $args >/dev/null || true
done

# Live: a running python3 with its memory touched.
tmp=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkfifo "$tmp/in"
exec 7<>"$tmp/in"
/usr/bin/python3 -c 'import sys; b = bytearray(64 << 20); print("ready", flush=True); sys.stdin.read()' <"$tmp/in" >"$tmp/out" &
pid=$!
for _ in $(seq 500); do grep -q ready "$tmp/out" 2>/dev/null && break; sleep 0.01; done
hyperfine --style basic -N -w 1 -r 10 -i \
  "$talos introspect --pid $pid" \
  "$talos snapshot --pid $pid -o $tmp/snap.core" \
  "gcore -o $tmp/gc $pid"
"$talos" snapshot --pid "$pid" -o "$tmp/snap.core" 2>&1 | tail -1
ls -l "$tmp/snap.core" "$tmp"/gc.* | awk '{ print $5, $9 }'
