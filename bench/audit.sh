#!/usr/bin/env bash
# Sweep `talos audit` (release build) over every ELF file in a directory
# (default /usr/bin), auto-detected and as an SGX enclave, and report exit
# codes and wall time per binary. Internal errors (exit 2 on a valid ELF of
# a supported architecture, a crash) make the script fail.
#   bench/audit.sh [DIR] [--tsv FILE]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="$root/target/release/talos"
[[ -x "$talos" ]] || cargo build --release --manifest-path "$root/Cargo.toml" -p talos-analyzer --quiet
dir="${1:-/usr/bin}"
tsv="${3:-/tmp/talos-audit-sweep.tsv}"
echo "machine: $(nproc) cores, $(uname -r); $("$talos" --version)"
python3 - "$talos" "$dir" "$tsv" <<'PY'
import os, subprocess, sys, time, statistics
talos, d, tsv = sys.argv[1:4]
files = []
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    if os.path.islink(p) or not os.path.isfile(p):
        continue  # count each file once
    try:
        with open(p, "rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
    except OSError:
        continue
    files.append(p)
rows, bad = [], []
for p in files:
    for tee in ("auto", "sgx"):
        t0 = time.monotonic()
        r = subprocess.run([talos, "audit", p, "--tee", tee, "--format", "json"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.monotonic() - t0
        err = r.stderr.decode(errors="replace").strip()
        rows.append((p, tee, r.returncode, dt, os.path.getsize(p), err))
        refused = r.returncode == 2 and ("unsupported" in err or "no executable code" in err)
        if r.returncode not in (0, 1, 3) and not refused:
            bad.append((p, tee, r.returncode, err))
with open(tsv, "w") as f:
    f.write("file\ttee\texit\tseconds\tbytes\tstderr\n")
    for row in rows:
        f.write("\t".join(str(x) for x in row) + "\n")
for tee in ("auto", "sgx"):
    rs = [r for r in rows if r[1] == tee]
    ts = sorted(r[3] for r in rs)
    codes = {}
    for r in rs:
        codes[r[2]] = codes.get(r[2], 0) + 1
    over = [r for r in rs if r[3] > 1.0]
    p95 = ts[int(0.95 * (len(ts) - 1))]
    print(f"--tee {tee}: {len(rs)} ELF files, exit codes {dict(sorted(codes.items()))}")
    print(f"  wall time: median {statistics.median(ts)*1000:.0f} ms, p95 {p95*1000:.0f} ms, "
          f"max {ts[-1]*1000:.0f} ms, total {sum(ts):.1f} s; {len(over)} over 1 s")
    for r in sorted(over, key=lambda r: -r[3])[:10]:
        t0 = time.monotonic()
        subprocess.run([talos, "cfg", r[0]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = time.monotonic() - t0
        print(f"    {r[3]:6.2f} s  (talos cfg alone {c:5.2f} s)  {r[4]/1e6:6.1f} MB  {r[0]}")
print(f"per-file results: {tsv}")
if bad:
    for b in bad:
        print("INTERNAL ERROR", *b)
    sys.exit(1)
PY
