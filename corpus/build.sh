#!/usr/bin/env bash
# Build the talos test corpus: real upstream C programs compiled by real
# compilers for several architectures, unstripped + stripped, with ground truth
# from the symbol table and a manifest. See corpus/README.md.
#
#   corpus/build.sh [--arch LIST] [--quick] [--jobs N] [--out DIR] [--clean] [--verbose]
#
#   --arch LIST  comma list of x86_64,i386,riscv64,aarch64,mingw,x86_64-clang,
#                riscv64-clang
#                (default: all whose compiler is installed; the others are
#                reported as SKIPPED. An explicitly listed arch that cannot be
#                built is an error.)
#   --quick      small programs only (bzip2, zlib), -O0/-O2, plus bzip2's
#                changed-line variant; no load-address variants
#   --jobs N     parallel compiler processes (default: number of CPUs)
#   --out DIR    output directory (default: corpus/out)
#   --clean      first delete what this script made in the output directory
#                (arch dirs, obj/, src-changed/, manifest.json); other things
#                there, e.g. corpus/out/dumps/, are left alone
#
# Needs: bash, python3 (stdlib only), cargo (to fetch the pinned -sys crates
# that bundle the C sources), and the compilers. Works from any cwd.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"
arch=""
quick=""
jobs=""
verbose=""
clean=""

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
    --arch=*) arch="${1#*=}"; shift ;;
    --quick) quick="--quick"; shift ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
    --jobs=*) jobs="${1#*=}"; shift ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --clean) clean=1; shift ;;
    -v|--verbose) verbose="--verbose"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

for tool in python3 cargo; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is required" >&2; exit 1; }
done

mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [[ -n "$clean" ]]; then
  # only our own outputs: corpus/out/dumps/ belongs to corpus/dumps/make-dumps.sh
  for d in x86_64 i386 riscv64 aarch64 mingw x86_64-clang riscv64-clang obj src-changed .m32-include; do
    rm -rf "${out:?}/$d"
  done
  rm -f "$out/manifest.json" "$out/.cargo-metadata.json" "$out/.compile-times.tsv"
fi
manifest="$here/sources/Cargo.toml"

# Fetch the pinned crates (no-op when they are in the cargo cache already),
# then ask cargo where their sources are.
cargo fetch --locked --manifest-path "$manifest" --quiet
cargo metadata --locked --offline --format-version 1 --manifest-path "$manifest" \
  > "$out/.cargo-metadata.json"

args=(--out "$out" --metadata "$out/.cargo-metadata.json")
[[ -n "$arch" ]] && args+=(--arch "$arch")
[[ -n "$quick" ]] && args+=("$quick")
[[ -n "$jobs" ]] && args+=(--jobs "$jobs")
[[ -n "$verbose" ]] && args+=("$verbose")

start=$SECONDS
python3 "$here/tools/build.py" "${args[@]}"
echo "corpus built in $((SECONDS - start)) s"
