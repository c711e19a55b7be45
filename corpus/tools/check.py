#!/usr/bin/env python3
"""Self-check of a built corpus (python3 stdlib + binutils).

  python3 corpus/tools/check.py [corpus/out]

For every manifest entry:
  * the files exist and their sha256 match the manifest;
  * the stripped copy has no symbol table, the unstripped one has one;
  * truth functions are sorted, unique, and lie inside executable sections;
  * the truth agrees with an independent reader: `readelf -sW` (ELF) or
    `objdump -t` (PE) -- same set of function start addresses;
  * base1/base2 pairs: same function names, sizes and count, different
    addresses, and the same code size;
  * the changed-line variant differs from its original in >= 1 function.
Prints one line per binary and a closing "N passed, N failed" line.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import binfmt  # noqa: E402

TOOLS = {  # binutils per arch (readelf reads every ELF machine)
    "mingw": "x86_64-w64-mingw32-objdump",
}


sha256 = binfmt.sha256


def readelf_funcs(path, exec_idx):
    out = subprocess.run(["readelf", "-sW", path], stdout=subprocess.PIPE, check=True,
                         env={"LC_ALL": "C", "PATH": os.environ["PATH"]}).stdout.decode()
    addrs = set()
    in_symtab = False
    for line in out.splitlines():
        if line.startswith("Symbol table"):
            in_symtab = "'.symtab'" in line
            continue
        f = line.split()
        if not in_symtab or len(f) < 8 or not f[0].endswith(":"):
            continue
        if f[3] not in ("FUNC", "IFUNC") or not f[6].isdigit():
            continue
        if int(f[6]) in exec_idx:
            addrs.add(int(f[1], 16))
    return addrs


def elf_exec_indices(path):
    out = subprocess.run(["readelf", "-SW", path], stdout=subprocess.PIPE, check=True,
                         env={"LC_ALL": "C", "PATH": os.environ["PATH"]}).stdout.decode()
    idx = set()
    for m in re.finditer(r"^\s*\[\s*(\d+)\]\s+\S+\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+"
                         r"[0-9a-f]+\s+(\S*)", out, re.M):
        if "X" in m.group(2) and "A" in m.group(2):
            idx.add(int(m.group(1)))
    return idx


def objdump_funcs(path, image_base, sections):
    out = subprocess.run([TOOLS["mingw"], "-t", path], stdout=subprocess.PIPE, check=True,
                         env={"LC_ALL": "C", "PATH": os.environ["PATH"]}).stdout.decode()
    addrs = set()
    for m in re.finditer(r"\(sec\s+(-?\d+)\)\(fl 0x[0-9a-f]+\)\(ty\s+([0-9a-f]+)\)\(scl\s+(\d+)\)"
                         r" \(nx \d+\) 0x([0-9a-f]+) (\S+)", out):
        sec, ty, val = int(m.group(1)), int(m.group(2), 16), int(m.group(4), 16)
        if sec <= 0 or (ty & 0x30) != 0x20:
            continue
        s = sections[sec - 1]
        if s["exec"]:
            # objdump prints PE symbol values as VMAs already
            addrs.add(val if val >= image_base else s["addr"] + val)
    return addrs


def check_entry(out, e, by_id):
    errs = []
    ub, sb, tp = (os.path.join(out, e[k]) for k in ("unstripped", "stripped", "truth"))
    for p in (ub, sb, tp):
        if not os.path.exists(p):
            return [f"missing {p}"]
    if sha256(ub) != e["sha256"]["unstripped"] or sha256(sb) != e["sha256"]["stripped"]:
        errs.append("sha256 differs from manifest")
    img, simg = binfmt.load(ub), binfmt.load(sb)
    if not img.has_symtab:
        errs.append("unstripped has no symbol table")
    if simg.has_symtab:
        errs.append("stripped copy still has a symbol table")
    with open(tp) as f:
        t = json.load(f)
    fn = t["functions"]
    addrs = [f["addr"] for f in fn]
    if addrs != sorted(set(addrs)):
        errs.append("truth not sorted/unique by addr")
    ex = t["exec_sections"]
    for f in fn:
        if not any(s["addr"] <= f["addr"] and f["addr"] + f["size"] <= s["addr"] + s["size"]
                   for s in ex):
            errs.append(f"{f['name']}@{f['addr']:#x}+{f['size']} outside executable sections")
            break
    overlaps = sum(1 for a, b in zip(fn, fn[1:]) if a["addr"] + a["size"] > b["addr"])
    if t["format"] == "elf":
        ref = readelf_funcs(ub, elf_exec_indices(ub))
    else:
        ref = objdump_funcs(ub, img.image_base, img.sections)
        ref |= {f["addr"] for f in fn if f.get("size_from") == "pdata_unnamed"}
    if ref != set(addrs):
        errs.append(f"truth vs independent reader: {len(set(addrs) - ref)} extra, "
                    f"{len(ref - set(addrs))} missing")
    if e["variant"] in ("base1", "base2"):
        o = by_id.get(e["same_code_as"])
        if o is None:
            errs.append("base pair partner missing")
        else:
            with open(os.path.join(out, o["truth"])) as f:
                ot = json.load(f)
            a = sorted((f["name"], f["size"]) for f in fn)
            b = sorted((f["name"], f["size"]) for f in ot["functions"])
            if a != b:
                errs.append("base pair: function names/sizes differ")
            if e["base_address"] == o["base_address"] or e["exec_size"] != o["exec_size"]:
                errs.append("base pair: same base or different code size")
    if e["variant"] == "changed" and not e.get("changed_functions"):
        errs.append("changed variant: no function differs")
    info = f"{len(fn)} functions" + (f", {overlaps} overlapping" if overlaps else "")
    return errs, info


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "out")
    with open(os.path.join(out, "manifest.json")) as f:
        m = json.load(f)
    by_id = {e["id"]: e for e in m["binaries"]}
    passed = failed = 0
    for e in m["binaries"]:
        r = check_entry(out, e, by_id)
        errs, info = (r, "") if isinstance(r, list) else r
        if errs:
            failed += 1
            print(f"FAIL {e['id']}: {'; '.join(errs)}")
        else:
            passed += 1
            print(f"ok   {e['id']}: {info}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
