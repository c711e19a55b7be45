#!/usr/bin/env bash
# Time `talos cfg FILE --format json -o OUT` (the whole talos.cfg/1
# document, streamed to a file) against `objdump -d FILE` (a linear sweep
# that decodes and prints every instruction) on the same files in the same
# run, and record peak memory. Usage: bench/cfg.sh [FILE...]
# Default files: the largest x86-64 corpus binary (stripped) and system
# binaries, /usr/bin/node among them when installed (whole-program scale).
# Files with more than 16 MB of .text get 3 runs and no warm-up (RUNS and
# WARMUP override). Needs hyperfine and GNU time (apt-get install hyperfine
# time).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="$root/target/release/talos"
[[ -x "$talos" ]] || cargo build --release --manifest-path "$root/Cargo.toml" --quiet
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  largest=$(ls -S "$root"/corpus/out/x86_64/*.stripped 2>/dev/null | head -1 || true)
  [[ -n "$largest" ]] && files+=("$largest")
  for f in /usr/bin/bash /usr/bin/python3.11 /usr/bin/node; do [[ -f "$f" ]] && files+=("$f"); done
fi
echo "machine: $(nproc) cores, $(uname -r); talos $("$talos" --version)"
json=$(mktemp /tmp/talos-cfg-bench.XXXXXX.json)
trap 'rm -f "$json"' EXIT
for f in "${files[@]}"; do
  text=$(size -A "$f" | awk '$1==".text"{print $2}')
  echo
  echo "== $f ($(stat -c %s "$f") bytes, .text $text bytes)"
  if [[ ${text:-0} -gt 16000000 ]]; then runs=${RUNS:-3} warmup=${WARMUP:-0}; else runs=${RUNS:-10} warmup=${WARMUP:-2}; fi
  hyperfine --style basic -N -w "$warmup" -r "$runs" --export-json /tmp/talos-bench.json \
    "$talos cfg $f --format json -o $json" "objdump -d $f" >/dev/null
  python3 - "$f" <<'PY'
import json, sys
r = json.load(open('/tmp/talos-bench.json'))['results']
t, o = r[0], r[1]
print(f"  talos cfg   mean {t['mean']*1000:7.1f} ms  min {t['min']*1000:7.1f} ms  user {t['user']*1000:7.1f} ms")
print(f"  objdump -d  mean {o['mean']*1000:7.1f} ms  min {o['min']*1000:7.1f} ms  user {o['user']*1000:7.1f} ms")
print(f"  ratio objdump/talos (mean) {o['mean']/t['mean']:.2f}x, "
      f"(user+system) {(o['user']+o['system'])/(t['user']+t['system']):.2f}x")
PY
  for cmd in "$talos cfg $f --format json -o $json" "objdump -d $f"; do
    /usr/bin/time -f "  peak RSS %M KiB  ($cmd)" $cmd >/dev/null 2>/tmp/talos-time.txt || true
    tail -1 /tmp/talos-time.txt
  done
done
