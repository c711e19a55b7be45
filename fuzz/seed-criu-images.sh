#!/usr/bin/env bash
# Seed fuzz/corpus/criu_images with the talos.images/1 stream of a real
# CRIU image directory: statekeeper (from corpus/dumps/make-dumps.sh) with
# no heap buffer, dumped by criu. Without criu, root or the corpus binary it
# seeds nothing and the target starts from scratch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
sk=../corpus/out/dumps/statekeeper
out=corpus/criu_images
mkdir -p "$out"
if [[ ! -x $sk ]] || ! command -v criu >/dev/null || [[ $(id -u) != 0 ]] || ! criu check >/dev/null 2>&1; then
  exit 0
fi
work=$(mktemp -d)
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=$(sh -c "setsid '$sk' --tick 50 --heap-mib 0 </dev/null >'$work/out' 2>&1 & echo \$!")
sleep 0.3
mkdir "$work/img"
criu dump -t "$pid" -D "$work/img" -o dump.log >/dev/null 2>&1 || exit 0
python3 - "$work/img" "$out/statekeeper.stream" <<'PY'
import os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
names = sorted((n for n in os.listdir(src) if n.endswith(".img")),
               key=lambda n: (n.startswith("pages-"), n))
s = bytearray(b"TALOSIMG\x01")
for n in names:
    b = open(os.path.join(src, n), "rb").read()
    s += b"\x01" + struct.pack(">H", len(n)) + n.encode() + struct.pack(">Q", len(b)) + b
s += b"\x00" + struct.pack(">I", len(names))
open(dst, "wb").write(s)
PY
