#!/usr/bin/env python3
"""Seed fuzz/corpus/audit_binary from the corpus's enclave programs.

The audit_binary target reads a little-endian u16 N, then a binary whose last
N bytes are split off as its SIGSTRUCT (.sig); without seeds in that layout
libFuzzer never reaches past the ELF magic check."""
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "corpus", "out", "enclave")
dst = os.path.join(here, "corpus", "audit_binary")
if not os.path.isdir(src):
    sys.exit(0)
os.makedirs(dst, exist_ok=True)
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if not os.path.isfile(path) or name.endswith((".json", ".sgx", ".sig")):
        continue
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or len(data) > 1 << 20:
        continue
    sig = os.path.join(src, name.replace(".stripped", "") + ".sig")
    aux = open(sig, "rb").read() if os.path.exists(sig) else b""
    with open(os.path.join(dst, "seed-" + name), "wb") as out:
        out.write(struct.pack("<H", len(aux)) + data + aux)
