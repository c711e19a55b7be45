#!/usr/bin/env bash
# Time `talos cfg` against `objdump -d` (a linear sweep that decodes and
# prints every instruction) on the same files in the same run, and record
# peak memory. Usage: bench/cfg.sh [FILE...]
# Default files: the largest x86-64 corpus binary (stripped) and system
# binaries. Needs hyperfine and GNU time (apt-get install hyperfine time).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="$root/target/release/talos"
[[ -x "$talos" ]] || cargo build --release --manifest-path "$root/Cargo.toml" --quiet
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  largest=$(ls -S "$root"/corpus/out/x86_64/*.stripped 2>/dev/null | head -1 || true)
  [[ -n "$largest" ]] && files+=("$largest")
  for f in /usr/bin/bash /usr/bin/python3.11; do [[ -f "$f" ]] && files+=("$f"); done
fi
echo "machine: $(nproc) cores, $(uname -r); talos $("$talos" --version)"
for f in "${files[@]}"; do
  text=$(size -A "$f" | awk '$1==".text"{print $2}')
  echo
  echo "== $f ($(stat -c %s "$f") bytes, .text $text bytes)"
  hyperfine --style basic -N -w 2 -r 10 --export-json /tmp/talos-bench.json \
    "$talos cfg $f" "objdump -d $f" >/dev/null
  python3 - "$f" <<'PY'
import json, sys
r = json.load(open('/tmp/talos-bench.json'))['results']
t, o = r[0], r[1]
print(f"  talos cfg   mean {t['mean']*1000:7.1f} ms  min {t['min']*1000:7.1f} ms  user {t['user']*1000:7.1f} ms")
print(f"  objdump -d  mean {o['mean']*1000:7.1f} ms  min {o['min']*1000:7.1f} ms  user {o['user']*1000:7.1f} ms")
print(f"  ratio objdump/talos (mean) {o['mean']/t['mean']:.2f}x")
PY
  for cmd in "$talos cfg $f" "objdump -d $f"; do
    /usr/bin/time -f "  peak RSS %M KiB  ($cmd)" $cmd >/dev/null 2>/tmp/talos-time.txt || true
    tail -1 /tmp/talos-time.txt
  done
done
