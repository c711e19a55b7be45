#!/usr/bin/env python3
"""Function-start accuracy of `talos cfg` on the corpus, every architecture.

usage: bench/score.py [--talos PATH] [--arch A,B] [--filter SUBSTR] [--verbose N]

For every default-variant binary in corpus/out/manifest.json (ELF and PE),
runs `talos cfg --format json` on the *stripped* copy and compares function
starts with the ground truth `<binary>.truth.json` (symbol table of the
unstripped copy). Predicted functions inside PLT sections (.plt, .plt.sec,
.plt.got, .iplt) are not scored: the truth has no symbols there. Sizes are
compared where the truth has a non-zero size.

Prints one row per binary: truth, pred, TP, precision, recall, F1, sizes
matched; then per-architecture totals. With --verbose N, lists up to N false
positives, false negatives and size mismatches per binary.
"""
import argparse, json, os, subprocess, sys, time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get('TALOS_CORPUS_OUT', os.path.join(ROOT, 'corpus', 'out'))
PLT = ('.plt', '.plt.sec', '.plt.got', '.iplt', '.plt.bnd')


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
    pred = {f['addr']: f['size'] for f in doc['functions'] if not inplt(f['addr'])}
    tp = set(T) & set(pred)
    fp = sorted(set(pred) - set(T))
    fn = sorted(set(T) - set(pred))
    prec = len(tp) / len(pred) if pred else 0.0
    rec = len(tp) / len(T) if T else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    sized = [a for a in tp if T[a]['size'] > 0]
    bad = sorted(a for a in sized if pred[a] != T[a]['size'])
    row = dict(id=entry['id'], arch=entry['arch'] if entry['format'] == 'elf' else 'mingw',
               truth=len(T), pred=len(pred), tp=len(tp), p=prec, r=rec, f1=f1,
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
    print(f"{'binary':34} {'truth':>6} {'pred':>6} {'P':>7} {'R':>7} {'F1':>7} {'sizes':>11} {'s':>6}")
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
        print(f"{row['id']:34} {row['truth']:6} {row['pred']:6} {row['p']:7.4f} {row['r']:7.4f} "
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
