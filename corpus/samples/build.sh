#!/usr/bin/env bash
# Rebuild the committed demo samples (deterministic: same compiler, same bytes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
gcc -O2 -g0 -ffile-prefix-map="$PWD"=. -Wl,--build-id=sha1 -o demo-x86_64 demo.c
gcc -O2 -g0 -ffile-prefix-map="$PWD"=. -Wl,--build-id=sha1 -o counter-x86_64 counter.c
sha256sum demo-x86_64 counter-x86_64
