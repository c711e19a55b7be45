#!/usr/bin/env bash
# Equal-output check for behaviour-preserving changes (refactors): record the
# hashes of what `talos` prints on every corpus input, change the code, and
# check that every output is still byte-for-byte the same.
#
#   bench/same-output.sh record FILE    run every job, write FILE
#   bench/same-output.sh compare FILE   run every job again, print each
#                                       difference from FILE; exit 1 if any
#   bench/same-output.sh list           print the jobs (one talos command line each)
#
# A job is one talos command line, run from the repository root with paths
# relative to it (system binaries absolute). FILE has one line per job:
#   COMMAND LINE <TAB> INPUTS-BLAKE3 <TAB> EXIT CODE <TAB> STDOUT-BLAKE3 <TAB> STDERR-BLAKE3
# INPUTS-BLAKE3 hashes the BLAKE3 of every file named on the command line, so a
# changed corpus shows up as "input changed", not as a change of talos. Lines
# starting with '#' are comments (talos version, git revision, date).
#
# What is compared: the exit code and stdout must match exactly; a different
# stderr (error wording) is printed as a note and does not fail the compare.
# A job missing on either side is a difference.
#
# The jobs (see jobs() below): on every binary of corpus/out/{x86_64,
# x86_64-clang,i386,aarch64,riscv64,mingw,enclave,hardening} (stripped twins
# included; not corpus/out/obj, which holds the compilers' object files) plus
# the dump corpus's statekeeper and a few system binaries:
#   cfg --format json; audit --format json|sarif|text|html;
# on the enclave and hardening corpora also audit --tee sgx|gramine|keystone|none
# (json, sarif) and two policies; diff --format json over O0/O2, O2/-changed
# (plain and stripped) and -base1/-base2 pairs; on every corpus/out/dumps/*.core
#   introspect --format json (statekeeper cores with --binary pointing at this
#   tree's statekeeper, so the result does not depend on /work/main),
#   digest --format json, digest --all --format json;
# and a few extra introspect (--flow-cfg, --no-flow, --vdso) and digest --diff runs.
#
# Determinism: every output was run twice on the same tree and compared
# (`same-output.sh record A; same-output.sh compare A`): none contains a time,
# pid or temporary path, so nothing is normalised. Absolute paths do appear
# (system binaries, module paths recorded in cores), which is fine as long as
# record and compare see the same files; the INPUTS column catches corpus
# changes. Because paths are relative, a FILE recorded in one worktree can be
# compared in another whose corpus is the same (e.g. a throwaway worktree of main).
#
# Environment:
#   TALOS=PATH   talos binary to run (default: target/release/talos, built first
#                with `cargo build --release -p talos-analyzer`)
#   JOBS=N       parallel jobs (default 2)
#   ONLY=REGEX   only jobs whose command line matches (grep -E); compare then
#                checks only those recorded lines
#   KEEP=DIR     keep every job's stdout and stderr in DIR (to diff by hand)
# Needs b3sum. About 5 minutes on 2 busy cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-}"
file="${2:-}"
usage() {
  echo "usage: bench/same-output.sh record FILE | compare FILE | list" >&2
  exit 2
}
case "$mode" in
  record | compare) [[ -n "$file" ]] || usage ;;
  list) ;;
  *) usage ;;
esac
command -v b3sum >/dev/null || { echo "same-output: needs b3sum" >&2; exit 2; }
out=corpus/out
[[ -d $out/x86_64 && -d $out/dumps ]] || {
  echo "same-output: $root/$out is not built (corpus/build.sh)" >&2
  exit 2
}

# Files the policy jobs read; fixed contents at a fixed path, so the command
# lines and input hashes are the same on every run.
pdir=target/same-output
mkdir -p "$pdir"
printf '%s\n' 'fail_on = "medium"' '[rules]' 'disable = ["hardening-no-cet", "sgx-rdtsc", "gramine-log-level"]' \
  '[severity]' '"sgx-cpuid" = "low"' '"keystone-linux-syscall" = "high"' '"hardening-no-relro" = "info"' \
  >"$pdir/policy-severity.toml"
printf '%s\n' '[rules]' \
  'only = ["sgx-syscall", "sgx-debug-enclave", "gramine-insecure-option", "keystone-unknown-ecall", "hardening-wx-segment", "hardening-pe-no-dynamicbase"]' \
  >"$pdir/policy-only.toml"

# Binaries of the corpus (not the truth files, manifests and signatures next
# to them), then the system binaries.
binaries() {
  local d f
  for d in x86_64 x86_64-clang i386 aarch64 riscv64 mingw enclave hardening; do
    for f in "$out/$d"/*; do
      [[ -f $f ]] || continue
      case "$f" in *.json | *.sig | *.manifest.sgx | *.vdso) continue ;; esac
      echo "$f"
    done
  done
  echo "$out/dumps/statekeeper"
  for f in /usr/bin/sqlite3 /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 /usr/bin/python3.11; do
    [[ -f $f ]] && echo "$f"
  done
  return 0
}

# Old/new pairs for diff, when both exist.
diff_pairs() {
  local d p ext
  for d in x86_64 x86_64-clang i386 aarch64 riscv64 mingw; do
    ext=""
    [[ $d == mingw ]] && ext=".exe"
    for p in "$out/$d"/*-O2$ext; do
      [[ -f $p ]] || continue
      p="${p%-O2"$ext"}"
      pair "$p-O0$ext" "$p-O2$ext"
      pair "$p-O2$ext" "$p-O2-changed$ext"
      pair "$p-O2.stripped$ext" "$p-O2-changed.stripped$ext"
      pair "$p-O2-base1$ext" "$p-O2-base2$ext"
    done
  done
}
pair() { [[ -f $1 && -f $2 ]] && echo "diff --format json $1 $2" || true; }

jobs() {
  local b t c
  while read -r b; do
    echo "cfg --format json $b"
    echo "audit --format json $b"
    echo "audit --format sarif $b"
    echo "audit --format text $b"
    echo "audit --format html $b"
    case "$b" in
      "$out"/enclave/* | "$out"/hardening/*)
        for t in sgx gramine keystone none; do
          echo "audit --tee $t --format json $b"
          echo "audit --tee $t --format sarif $b"
        done
        echo "audit --policy $pdir/policy-severity.toml --format json $b"
        echo "audit --policy $pdir/policy-only.toml --format sarif $b"
        ;;
    esac
  done < <(binaries)
  echo "audit --list-rules"
  diff_pairs
  for c in "$out"/dumps/*.core; do
    case "$(basename "$c")" in
      sk.*) echo "introspect --format json $c --binary $out/dumps/statekeeper" ;;
      *) echo "introspect --format json $c" ;;
    esac
    echo "digest --format json $c"
    echo "digest --all --format json $c"
  done
  local sk="--binary $out/dumps/statekeeper"
  local d="$out/dumps"
  echo "introspect --format json $d/sk.gcore-7f.core $sk --flow-cfg"
  echo "introspect --format json $d/sk.flow.core $sk --flow-cfg"
  echo "introspect --format json $d/sk.kernel-7f.core $sk --no-flow"
  echo "introspect --format json $d/python3.gcore-7f.core --no-flow"
  echo "introspect --format json $d/sk.vdso-other.core $sk --vdso $d/sk.vdso-other.vdso"
  echo "introspect --format json $d/sk.gcore-7f.core"
  echo "digest --diff --format json $d/sk.twice-1.core $d/sk.twice-2.core"
  echo "digest --diff --format json $d/sk.gcore-7f.core $d/sk.kernel-7f.core"
}

joblist() {
  if [[ -n ${ONLY:-} ]]; then
    jobs | grep -E -- "$ONLY" || true
  else
    jobs
  fi
}

if [[ $mode == list ]]; then
  joblist
  exit 0
fi

if [[ -z ${TALOS:-} ]]; then
  cargo build --release -p talos-analyzer --quiet
  TALOS="$root/target/release/talos"
fi
[[ -x $TALOS ]] || { echo "same-output: $TALOS is not executable" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/same-output.XXXXXX")"
trap 'rm -rf "$work"' EXIT
keep="${KEEP:-}"
[[ -n $keep ]] && mkdir -p "$keep"

# One job: its command line is $2, $1 numbers its result file.
run_one() {
  local n=$1 line=$2 a ins="" code=0 name
  local -a args
  read -ra args <<<"$line"
  for a in "${args[@]}"; do
    [[ -f $a ]] && ins+="$(b3sum --no-names "$a")"
  done
  ins="$(printf '%s' "$ins" | b3sum --no-names)"
  "$TALOS" "${args[@]}" >"$work/$n.out" 2>"$work/$n.err" </dev/null || code=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$line" "${ins:0:32}" "$code" \
    "$(b3sum --no-names <"$work/$n.out")" "$(b3sum --no-names <"$work/$n.err")" >"$work/$n.res"
  if [[ -n $keep ]]; then
    name="$(printf '%s' "$line" | tr -c 'A-Za-z0-9._-' '_')"
    mv "$work/$n.out" "$keep/$name.out"
    mv "$work/$n.err" "$keep/$name.err"
  else
    rm -f "$work/$n.out" "$work/$n.err"
  fi
}
export -f run_one
export TALOS work keep

# Run every job, results sorted by command line into $1.
run_all() {
  local dest=$1 count
  joblist | awk '{ print NR "\t" $0 }' >"$work/jobs"
  count=$(wc -l <"$work/jobs")
  echo "same-output: $count jobs, ${JOBS:-2} at a time, talos $TALOS" >&2
  tr '\t' '\n' <"$work/jobs" | xargs -d '\n' -n 2 -P "${JOBS:-2}" bash -c 'run_one "$1" "$2"' _
  {
    echo "# same-output/1 of $("$TALOS" --version)"
    echo "# tree $root at $(git rev-parse HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "# recorded $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    find "$work" -name '*.res' -print0 | xargs -0 cat | LC_ALL=C sort
  } >"$dest"
  [[ $(grep -vc '^#' "$dest") == "$count" ]] || { echo "same-output: some jobs left no result" >&2; exit 2; }
}

# Jobs per command (subcommand and format) and distinct input files.
summary() {
  grep -v '^#' "$1" | awk -F'\t' '
    { n = split($1, w, " "); c = w[1]; f = "";
      for (i = 2; i <= n; i++) {
        if (w[i] == "--format") { f = w[i + 1] }
        if (w[i] == "--tee" || w[i] == "--policy" || w[i] == "--diff" || w[i] == "--all" || w[i] == "--flow-cfg" || w[i] == "--no-flow" || w[i] == "--vdso" || w[i] == "--list-rules") { v = w[i + 1]; sub(/.*\//, "", v); c = c " " w[i] (w[i] ~ /^--(tee|policy)$/ ? "=" v : "") }
      }
      k = c (f ? " " f : ""); jobs[k]++; codes[k "|" $3]++; total++
      for (i = 2; i <= n; i++) if (w[i] ~ /\// && w[i - 1] != "--binary" && w[i - 1] != "--policy" && w[i - 1] != "--vdso") inputs[w[i]] = 1 }
    END {
      ni = 0; for (i in inputs) ni++
      printf "%d jobs over %d input files:\n", total, ni; fflush()
      for (k in jobs) { s = ""; for (x = 0; x < 256; x++) if ((k "|" x) in codes) s = s " exit " x ": " codes[k "|" x]
        printf "  %-40s %4d  (%s)\n", k, jobs[k], substr(s, 2) | "LC_ALL=C sort" }
      close("LC_ALL=C sort")
    }'
}

if [[ $mode == record ]]; then
  run_all "$work/new"
  cp "$work/new" "$file"
  summary "$file"
  echo "same-output: recorded $file"
  exit 0
fi

# compare
[[ -f $file ]] || { echo "same-output: no such file: $file" >&2; exit 2; }
run_all "$work/new"
grep -v '^#' "$file" >"$work/old.all" || true
if [[ -n ${ONLY:-} ]]; then
  awk -F'\t' -v re="$ONLY" '$1 ~ re' "$work/old.all" >"$work/old"
else
  cp "$work/old.all" "$work/old"
fi
grep -v '^#' "$work/new" >"$work/now"
awk -F'\t' '
  FNR == NR { old[$1] = $0; oi[$1] = $2; oc[$1] = $3; oo[$1] = $4; oe[$1] = $5; next }
  {
    seen[$1] = 1
    if (!($1 in old)) { print "NEW JOB (not recorded): " $1; d++; next }
    if ($2 != oi[$1]) { print "INPUT CHANGED: " $1; d++; next }
    if ($3 != oc[$1] || $4 != oo[$1]) {
      print "DIFFERENT: " $1 "\n    recorded exit " oc[$1] " stdout " substr(oo[$1], 1, 16) \
            "\n    now      exit " $3 " stdout " substr($4, 1, 16); d++; next }
    if ($5 != oe[$1]) { print "note: stderr differs (exit and stdout equal): " $1; notes++ }
  }
  END {
    for (k in old) if (!(k in seen)) { print "MISSING JOB (recorded, not run now): " k; d++ }
    printf "same-output: %d jobs compared, %d differences, %d stderr notes\n", FNR, d, notes
    exit d > 0
  }' "$work/old" "$work/now" && rc=0 || rc=$?
summary "$work/new"
cp "$work/new" "$file.now" 2>/dev/null && echo "same-output: this run's results in $file.now"
exit "$rc"
