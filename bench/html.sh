#!/usr/bin/env bash
# HTML reports of the largest corpus cases: page size, the time talos takes
# to write the page against writing the JSON of the same run (hyperfine),
# and the time headless Chromium takes to load, lay out and render the page
# against an empty page in the same run.
#   bench/html.sh            (needs the corpus: corpus/build.sh and
#                             corpus/dumps/make-dumps.sh; chromium; hyperfine)
#
# Load time: a harness page (outside the report, with its own script) puts
# the report in an iframe and measures from inserting the iframe to its
# load event plus a forced style and layout of the whole report document
# (reading its scrollHeight). Chromium's own start is not counted. Each page is loaded RUNS times, each in a fresh browser.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
talos="$root/target/release/talos"
cargo build --release --manifest-path "$root/Cargo.toml" -p talos-analyzer --quiet
runs="${RUNS:-5}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
c="$root/corpus/out"
d="$c/dumps"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $("$talos" --version), $(chromium --version 2>/dev/null | head -1)"

# name|talos arguments (without --format)
cases=(
  "introspect python3.gcore-7f.core (22.9 MiB, 93 mappings, 16 modules)|introspect $d/python3.gcore-7f.core"
  "introspect sk.int3.core (tampered)|introspect $d/sk.int3.core --binary $d/statekeeper"
  "audit sgx-bad.so|audit $c/enclave/sgx-bad.so"
  "diff sqlite3-O0 vs sqlite3-O2 (whole program)|diff $c/x86_64/sqlite3-O0 $c/x86_64/sqlite3-O2"
  "diff bzip2-O2 vs bzip2-O2-changed|diff $c/x86_64/bzip2-O2 $c/x86_64/bzip2-O2-changed"
)

load_ms() { # page -> median ms over $runs
  local page="$1" harness="$out/harness.html" i
  cat >"$harness" <<EOF
<!DOCTYPE html><html><head><title>pending</title></head><body><script>
const t0 = performance.now();
const f = document.createElement('iframe');
f.style.width = '1280px'; f.style.height = '1400px';
f.onload = () => {
  const h = f.contentDocument ? f.contentDocument.documentElement.scrollHeight : -1;
  document.title = 'ms=' + (performance.now() - t0).toFixed(1) + ' h=' + h;
};
f.src = 'file://$page';
document.body.appendChild(f);
</script></body></html>
EOF
  for i in $(seq "$runs"); do
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --allow-file-access-from-files --user-data-dir="$out/profile-$i" \
      --proxy-server=http://127.0.0.1:9 --proxy-bypass-list='<-loopback>' \
      --dump-dom "file://$harness" 2>/dev/null |
      grep -o 'ms=[0-9.]* h=-\?[0-9]*' | head -1
    rm -rf "$out/profile-$i"
  done
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '<!DOCTYPE html><title>empty</title><p>empty</p>\n' >"$out/empty.html"
base=$(load_ms "$out/empty.html" | sed 's/ms=\([0-9.]*\).*/\1/' | median)
echo "empty page: ${base} ms"
echo
echo "| case | page | talos html / json (hyperfine mean) | load+render (median of $runs) | vs empty page |"
echo "|---|---|---|---|---|"
for entry in "${cases[@]}"; do
  name="${entry%%|*}"
  args="${entry#*|}"
  page="$out/page.html"
  # shellcheck disable=SC2086
  "$talos" $args --format html -o "$page" || [[ $? -le 3 ]]
  size=$(stat -c %s "$page")
  hf="$out/hf.json"
  # shellcheck disable=SC2086
  hyperfine -N -w 1 -r 5 -i --export-json "$hf" \
    "$talos $args --format html -o $out/x.html" "$talos $args --format json -o $out/x.json" >/dev/null 2>&1
  read -r th tj < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(r[0]["mean"]*1000, r[1]["mean"]*1000)' "$hf")
  ms=$(load_ms "$page" | sed 's/ms=\([0-9.]*\).*/\1/' | median)
  python3 -c 'import sys; n,s,th,tj,ms,b=sys.argv[1:]; s=int(s); th,tj,ms,b=map(float,(th,tj,ms,b)); print(f"| {n} | {s/1048576:.2f} MiB | {th:.0f} ms / {tj:.0f} ms = {th/tj:.2f}x | {ms:.0f} ms | {ms/b:.1f}x |")' \
    "$name" "$size" "$th" "$tj" "$ms" "$base"
done
