#!/usr/bin/env bash
# `talos cfg` speed per megabyte of .text on the same program built for
# x86-64, RISC-V 64, AArch64 and PE32+ (mingw), in one hyperfine run so that
# all commands share the machine's load. Usage:
#   bench/cfg-arch.sh [PROGRAM-OPT...]      default: pcre2-O2 zstd-O2
# Reads corpus/out (or $TALOS_CORPUS_OUT). Needs hyperfine, binutils' size
# and x86_64-w64-mingw32-objdump for the PE .text size.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="$root/target/release/talos"
out="${TALOS_CORPUS_OUT:-$root/corpus/out}"
[[ -x "$talos" ]] || cargo build --release -p talos-analyzer --manifest-path "$root/Cargo.toml" --quiet
progs=("$@")
[[ ${#progs[@]} -gt 0 ]] || progs=(pcre2-O2 zstd-O2)
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); talos $("$talos" --version)"
for p in "${progs[@]}"; do
  files=() ; sizes=()
  for a in x86_64 riscv64 aarch64 mingw; do
    f="$out/$a/$p.stripped"; [[ $a == mingw ]] && f="$f.exe"
    [[ -f "$f" ]] || continue
    if [[ $a == mingw ]]; then
      t=$(( 16#$(x86_64-w64-mingw32-objdump -h "$f" | awk '$2==".text"{print $3}') ))
    else
      t=$(size -A "$f" | awk '$1==".text"{print $2}')
    fi
    files+=("$f"); sizes+=("$t")
  done
  cmds=(); for f in "${files[@]}"; do cmds+=("$talos cfg $f"); done
  echo; echo "== $p"
  hyperfine --style basic -N -w 3 -r 20 --export-json /tmp/talos-arch-bench.json "${cmds[@]}" >/dev/null
  python3 - "${files[@]}" -- "${sizes[@]}" <<'PY'
import json, sys
args = sys.argv[1:]; k = args.index('--'); files, sizes = args[:k], [int(x) for x in args[k+1:]]
res = json.load(open('/tmp/talos-arch-bench.json'))['results']
base = None
print(f"  {'binary':34} {'.text':>9} {'mean ms':>8} {'min ms':>8} {'ms/MB':>7} {'vs x86-64':>9}")
for f, s, r in zip(files, sizes, res):
    per = r['mean'] * 1000 / (s / 1e6)
    if base is None and '/x86_64/' in f: base = per
    rel = f"{per / base:.2f}x" if base else "-"
    print(f"  {'/'.join(f.split('/')[-2:]):34} {s:9} {r['mean']*1000:8.1f} {r['min']*1000:8.1f} {per:7.1f} {rel:>9}")
PY
done
