#!/usr/bin/env bash
# Rebuild the committed demo sample (deterministic: same compiler, same bytes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
gcc -O2 -g0 -ffile-prefix-map="$PWD"=. -Wl,--build-id=sha1 -o demo-x86_64 demo.c
sha256sum demo-x86_64
