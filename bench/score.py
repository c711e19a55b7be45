#!/usr/bin/env python3
"""Function-start accuracy of `talos cfg` on the corpus, every architecture.

usage: bench/score.py [--talos PATH] [--arch A,B] [--filter SUBSTR] [--verbose N]
       (TALOS_CORPUS_OUT=DIR scores a copy of corpus/out elsewhere)

For every default-variant binary in corpus/out/manifest.json (ELF and PE),
runs `talos cfg --format json` on the *stripped* copy and compares function
starts with the ground truth `<binary>.truth.json` (symbol table of the
unstripped copy).

Not scored, and counted in the `excl` column instead:
  * predicted functions in PLT sections (.plt, .plt.sec, .plt.got, .iplt):
    the truth has no symbols there;
  * predicted functions at an address that carries a symbol of another type
    in the unstripped binary (ELF NOTYPE, COFF type 0): hand-written
    assembly the truth leaves out (crt1's `load_gp` on RISC-V, mingw's
    `___chkstk_ms`);
  * PE import thunks (`jmp [rip+__imp_X]`, named `X@iat`) that have no COFF
    function symbol: the truth lists only the thunks that have one.
Sizes are compared where the truth has a size from the symbol table (ELF)
or from `.pdata` (PE); PE thunk sizes in the truth are distances to the
next symbol (they include the padding after the 6-byte jump) and are not
compared.

Prints one row per binary (truth, pred, excl, P, R, F1, sizes matched,
seconds), then per-architecture totals; --verbose N lists up to N false
positives, false negatives and size mismatches per binary.
"""
import argparse, json, os, re, subprocess, sys, time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get('TALOS_CORPUS_OUT', os.path.join(ROOT, 'corpus', 'out'))
PLT = ('.plt', '.plt.sec', '.plt.got', '.iplt', '.plt.bnd')


def other_symbols(path, fmt, arch):
    """Addresses of non-function symbols defined in executable sections."""
    out = set()
    if fmt == 'elf':
        secs = {}
        txt = subprocess.run(['readelf', '-SW', path], capture_output=True, text=True).stdout
        for line in txt.splitlines():
            m = re.match(r'\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+\S+\s+(\S*)', line)
            if m and 'X' in m.group(3):
                secs[m.group(1)] = m.group(2)
        txt = subprocess.run(['readelf', '-sW', path], capture_output=True, text=True).stdout
        for line in txt.splitlines():
            p = line.split()
            if len(p) >= 8 and p[3] == 'NOTYPE' and p[6] in secs and not p[7].startswith('$'):
                out.add(int(p[1], 16))
    else:
        tool = 'x86_64-w64-mingw32-objdump'
        secs = {}
        for line in subprocess.run([tool, '-h', path], capture_output=True, text=True).stdout.splitlines():
            p = line.split()
            if len(p) >= 4 and p[0].isdigit():
                secs[int(p[0]) + 1] = int(p[3], 16)
        for line in subprocess.run([tool, '-t', path], capture_output=True, text=True).stdout.splitlines():
            m = re.match(r'\[\s*\d+\]\(sec\s+(-?\d+)\)\(fl 0x..\)\(ty\s+([0-9a-f]+)\)\(scl\s+(\d+)\) \(nx \d\) 0x([0-9a-f]+) (\S+)', line)
            if m and int(m.group(1)) in secs and (int(m.group(2), 16) >> 4) & 3 != 2 and m.group(3) in ('2', '3'):
                out.add(secs[int(m.group(1))] + int(m.group(4), 16))
    return out


def score(entry, talos, verbose):
    truth = json.load(open(os.path.join(OUT, entry['truth'])))
    stripped = os.path.join(OUT, entry['stripped'])
    t0 = time.time()
    r = subprocess.run([talos, 'cfg', stripped, '--format', 'json'], capture_output=True, text=True)
    dt = time.time() - t0
    if r.returncode != 0:
        return None, f"{entry['id']}: talos failed ({r.returncode}): {r.stderr.strip()}"
    doc = json.loads(r.stdout)
    plt = [(s['addr'], s['addr'] + s['size']) for s in truth['exec_sections'] if s['name'] in PLT]
    inplt = lambda a: any(s <= a < e for s, e in plt)
    T = {f['addr']: f for f in truth['functions'] if not inplt(f['addr'])}
    others = other_symbols(os.path.join(OUT, entry['unstripped']), entry['format'], entry['arch'])
    pred, excl = {}, 0
    for f in doc['functions']:
        a = f['addr']
        thunk = entry['format'] == 'pe' and (f.get('name') or '').endswith('@iat')
        if inplt(a) or (a not in T and (a in others or thunk)):
            excl += 1
            continue
        pred[a] = f['size']
    tp = set(T) & set(pred)
    fp = sorted(set(pred) - set(T))
    fn = sorted(set(T) - set(pred))
    prec = len(tp) / len(pred) if pred else 0.0
    rec = len(tp) / len(T) if T else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    sized = [a for a in tp if T[a]['size'] > 0 and T[a].get('size_from', 'symtab') in ('symtab', 'pdata', 'pdata_unnamed')]
    bad = sorted(a for a in sized if pred[a] != T[a]['size'])
    row = dict(id=entry['id'], arch=entry['arch'] if entry['format'] == 'elf' else 'mingw',
               truth=len(T), pred=len(pred), excl=excl, tp=len(tp), p=prec, r=rec, f1=f1,
               sizes_ok=len(sized) - len(bad), sized=len(sized), secs=dt)
    lines = []
    for a in fp[:verbose]:
        lines.append(f"    FP {a:#x} size {pred[a]}")
    for a in fn[:verbose]:
        lines.append(f"    FN {a:#x} {T[a]['name']} size {T[a]['size']}")
    for a in bad[:verbose]:
        lines.append(f"    SIZE {a:#x} {T[a]['name']} truth {T[a]['size']} pred {pred[a]}")
    return row, "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--talos', default=os.path.join(ROOT, 'target', 'release', 'talos'))
    ap.add_argument('--arch', default='')
    ap.add_argument('--filter', default='')
    ap.add_argument('--variant', default='default')
    ap.add_argument('--verbose', type=int, default=0)
    a = ap.parse_args()
    man = json.load(open(os.path.join(OUT, 'manifest.json')))
    arches = set(a.arch.split(',')) if a.arch else None
    rows = []
    print(f"{'binary':34} {'truth':>6} {'pred':>6} {'excl':>5} {'P':>7} {'R':>7} {'F1':>7} {'sizes':>11} {'s':>6}")
    for e in man['binaries']:
        if e.get('variant', 'default') != a.variant:
            continue
        arch = e['arch'] if e['format'] == 'elf' else 'mingw'
        if arches and arch not in arches and e['id'].split('/')[0] not in arches:
            continue
        if a.filter and a.filter not in e['id']:
            continue
        row, detail = score(e, a.talos, a.verbose)
        if row is None:
            print(detail)
            continue
        rows.append(row)
        print(f"{row['id']:34} {row['truth']:6} {row['pred']:6} {row['excl']:5} {row['p']:7.4f} {row['r']:7.4f} "
              f"{row['f1']:7.4f} {row['sizes_ok']:5}/{row['sized']:<5} {row['secs']:6.2f}")
        if detail:
            print(detail)
    by = defaultdict(list)
    for r in rows:
        by[r['id'].split('/')[0]].append(r)
    print()
    print(f"{'arch dir':14} {'bins':>4} {'truth':>7} {'pred':>7} {'tp':>7} {'P':>7} {'R':>7} {'F1':>7} {'sizes':>13} {'minF1':>7}")
    for k in sorted(by):
        rs = by[k]
        t = sum(r['truth'] for r in rs); p = sum(r['pred'] for r in rs); tp = sum(r['tp'] for r in rs)
        pr = tp / p if p else 0; rc = tp / t if t else 0; f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0
        so = sum(r['sizes_ok'] for r in rs); sz = sum(r['sized'] for r in rs)
        print(f"{k:14} {len(rs):4} {t:7} {p:7} {tp:7} {pr:7.4f} {rc:7.4f} {f1:7.4f} {so:6}/{sz:<6} {min(r['f1'] for r in rs):7.4f}")


if __name__ == '__main__':
    main()
