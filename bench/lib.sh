# Sourced by the bench scripts (after setting `root`), for what each would
# otherwise write again:
#   bench_needs WHO TOOL...  exit 2, naming WHO and the tool, unless every
#                            TOOL is on PATH
#   bench_talos              print the talos binary to run: $TALOS when set,
#                            else target/release/talos, built first (a no-op
#                            when it is current, so a bench never times a
#                            stale binary)

bench_needs() {
  local who=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$who: needs $tool" >&2; exit 2; }
  done
}

bench_talos() {
  if [[ -n "${TALOS:-}" ]]; then
    echo "$TALOS"
    return
  fi
  (cd "$root" && cargo build --release -p talos-analyzer --quiet) >&2
  echo "$root/target/release/talos"
}
