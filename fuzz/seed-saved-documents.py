#!/usr/bin/env python3
"""Seed fuzz/corpus/saved_graph and saved_digest with real talos.cfg/1 and
talos.digest/1 documents (compact JSON), alone and as OLD NUL NEW pairs.

Uses a talos binary already built (target/release or target/debug; CI has
one from the test run); without one, or without the corpus, it seeds
nothing and the targets start from scratch."""
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.join(here, "..")
talos = next((p for p in (os.path.join(top, "target", k, "talos") for k in ("release", "debug"))
              if os.access(p, os.X_OK)), None)
if talos is None:
    sys.exit(0)


def doc(args):
    r = subprocess.run([talos] + args + ["--format", "json"], capture_output=True)
    if r.returncode not in (0, 1) or not r.stdout.startswith(b"{"):
        return None
    return json.dumps(json.loads(r.stdout), separators=(",", ":")).encode()


def write(target, name, data):
    if data is None:
        return
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


out = os.path.join(top, "corpus", "out")
graphs = {}
for rel in ("dumps/statekeeper", "enclave/keystone-clean", "enclave/keystone-bad",
            "enclave/sgx-clean.so", "enclave/sgx-bad.so", "enclave/gramine-app",
            "enclave/gramine-clean"):
    path = os.path.join(out, rel)
    if os.path.isfile(path):
        graphs[rel] = doc(["cfg", path])
        write("saved_graph", rel.replace("/", "-"), graphs[rel])
for a, b in (("enclave/keystone-clean", "enclave/keystone-bad"),
             ("enclave/sgx-clean.so", "enclave/sgx-bad.so"),
             ("enclave/gramine-clean", "enclave/gramine-app")):
    if graphs.get(a) and graphs.get(b):
        write("saved_graph", "pair-" + os.path.basename(a), graphs[a] + b"\0" + graphs[b])

dumps = os.path.join(out, "dumps")
small = os.path.join(here, "corpus", ".raw-image")
with open(small, "wb") as f:
    f.write(bytes(range(256)) * 48)  # three pages and a partial one
raw = doc(["digest", "--raw", "--base", "0x10000", small])
raw2 = doc(["digest", "--raw", "--base", "0x20000", "--perms", "rwx", small])
os.remove(small)
write("saved_digest", "raw", raw)
if raw and raw2:
    write("saved_digest", "pair-raw", raw + b"\0" + raw2)
sk = [doc(["digest", os.path.join(dumps, c)]) for c in ("sk.gcore-7f.core", "sk.patched.core")
      if os.path.isfile(os.path.join(dumps, c))]
for i, d in enumerate(sk):
    write("saved_digest", "sk%d" % i, d)
if len(sk) == 2 and all(sk):
    write("saved_digest", "pair-sk", sk[0] + b"\0" + sk[1])
