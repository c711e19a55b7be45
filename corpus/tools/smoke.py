#!/usr/bin/env python3
"""Run every stripped corpus binary once, to show it is a working program.

  python3 corpus/tools/smoke.py [corpus/out]

x86_64 and i386 run natively; riscv64 and aarch64 under qemu-user
(`apt-get install qemu-user`) with the Debian cross glibc as sysroot; PE under
wine if installed. Binaries with no runner are counted as skipped.
Closing line: "N passed, N failed, N skipped".
"""

import json
import os
import shutil
import subprocess
import sys

QEMU = {"riscv64": ("qemu-riscv64", "/usr/riscv64-linux-gnu"),
        "aarch64": ("qemu-aarch64", "/usr/aarch64-linux-gnu")}


def runner(arch):
    if arch in ("x86_64", "x86_64-clang", "i386"):
        return []
    if arch in QEMU:
        exe, root = QEMU[arch]
        if shutil.which(exe) and os.path.isdir(root):
            return [exe, "-L", root]
        return None
    if arch == "mingw" and shutil.which("wine"):
        return ["wine"]
    return None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "out")
    with open(os.path.join(out, "manifest.json")) as f:
        m = json.load(f)
    passed = failed = skipped = 0
    for e in m["binaries"]:
        pre = runner(e["arch"])
        if pre is None:
            skipped += 1
            continue
        exe = pre + [os.path.join(out, e["stripped"])]
        try:
            if e["program"] == "bzip2":  # the upstream CLI: compress stdin, then decompress
                c = subprocess.run(exe + ["-c"], input=b"talos corpus " * 1000,
                                   stdout=subprocess.PIPE, timeout=120, check=True).stdout
                d = subprocess.run(exe + ["-dc"], input=c, stdout=subprocess.PIPE,
                                   timeout=120, check=True).stdout
                ok = d == b"talos corpus " * 1000
            else:
                ok = subprocess.run(exe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    timeout=120).returncode == 0
        except (subprocess.SubprocessError, OSError):
            ok = False
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {e['id']}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
