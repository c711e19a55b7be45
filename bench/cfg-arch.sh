#!/usr/bin/env bash
# `talos cfg` speed per megabyte of .text on the same program built for
# x86-64, RISC-V 64, AArch64 and PE32+ (mingw), in one hyperfine run so that
# all commands share the machine's load. Usage:
#   bench/cfg-arch.sh [PROGRAM-OPT...]   default: pcre2-O2 pcre2-O0 xz-O2 lz4-O2 zlib-O2
# (the programs built for all four; TALOS_BENCH_RUNS=N runs each, default 20).
# Prints per binary ms per MB of .text and MB/s, then per architecture the
# MB/s over all programs and the time per MB relative to x86-64.
# Reads corpus/out (or $TALOS_CORPUS_OUT); TALOS_BIN=PATH times another
# build. Needs hyperfine, binutils' size and x86_64-w64-mingw32-objdump for
# the PE .text size.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="${TALOS_BIN:-$root/target/release/talos}"
out="${TALOS_CORPUS_OUT:-$root/corpus/out}"
[[ -x "$talos" ]] || cargo build --release -p talos-analyzer --manifest-path "$root/Cargo.toml" --quiet
progs=("$@")
[[ ${#progs[@]} -gt 0 ]] || progs=(pcre2-O2 pcre2-O0 xz-O2 lz4-O2 zlib-O2)
runs="${TALOS_BENCH_RUNS:-20}"
acc="$(mktemp)"; trap 'rm -f "$acc" /tmp/talos-arch-bench.json' EXIT
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); talos $("$talos" --version); $runs runs each"
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
  hyperfine --style basic -N -w 3 -r "$runs" --export-json /tmp/talos-arch-bench.json "${cmds[@]}" >/dev/null
  python3 - "$acc" "$p" "${files[@]}" -- "${sizes[@]}" <<'PY'
import json, sys
acc, prog, args = sys.argv[1], sys.argv[2], sys.argv[3:]
k = args.index('--'); files, sizes = args[:k], [int(x) for x in args[k+1:]]
res = json.load(open('/tmp/talos-arch-bench.json'))['results']
base = None
print(f"  {'binary':34} {'.text':>9} {'mean ms':>8} {'min ms':>8} {'ms/MB':>7} {'MB/s':>6} {'vs x86-64':>9}")
with open(acc, 'a') as out:
    for f, s, r in zip(files, sizes, res):
        per = r['mean'] * 1000 / (s / 1e6)
        if base is None and '/x86_64/' in f: base = per
        rel = f"{per / base:.2f}x" if base else "-"
        print(f"  {'/'.join(f.split('/')[-2:]):34} {s:9} {r['mean']*1000:8.1f} {r['min']*1000:8.1f} "
              f"{per:7.1f} {s / 1e6 / r['mean']:6.2f} {rel:>9}")
        out.write(json.dumps({'prog': prog, 'arch': f.split('/')[-2], 'text': s,
                              'mean': r['mean'], 'min': r['min'],
                              'cpu': r['user'] + r['system']}) + '\n')
PY
done
# Per architecture over the programs run: MB of .text per second (total
# .text / total mean time), and the time per MB relative to x86-64 on the
# same programs (only programs x86-64 was run on count).
python3 - "$acc" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
x86 = {r['prog']: r for r in rows if r['arch'] == 'x86_64'}
print()
print(f"  {'arch':8} {'programs':>8} {'.text MB':>9} {'MB/s mean':>10} {'MB/s min':>9} {'MB/s CPU':>9}"
      f" {'vs x86-64: wall':>16} {'min':>6} {'CPU':>6}")
for arch in ['x86_64', 'riscv64', 'aarch64', 'mingw']:
    rs = [r for r in rows if r['arch'] == arch and r['prog'] in x86]
    if not rs: continue
    xs = [x86[r['prog']] for r in rs]
    mb, xmb = sum(r['text'] for r in rs) / 1e6, sum(x['text'] for x in xs) / 1e6
    # time per MB relative to x86-64 on the same programs
    rel = {k: (sum(r[k] for r in rs) / mb) / (sum(x[k] for x in xs) / xmb) for k in ('mean', 'min', 'cpu')}
    print(f"  {arch:8} {len(rs):8} {mb:9.3f} {mb / sum(r['mean'] for r in rs):10.2f}"
          f" {mb / sum(r['min'] for r in rs):9.2f} {mb / sum(r['cpu'] for r in rs):9.2f}"
          f" {rel['mean']:15.2f}x {rel['min']:5.2f}x {rel['cpu']:5.2f}x")
PY
