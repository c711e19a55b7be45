#!/usr/bin/env bash
# Build statekeeper and take real memory dumps of it, python3 and sqlite3,
# for the talos introspect tests. See corpus/dumps/README.md.
#
#   corpus/dumps/make-dumps.sh [--out DIR] [--force]
#
# Writes DIR (default corpus/out/dumps) and DIR/manifest.env, a KEY=VALUE
# list of what each dump holds and where the planted changes are (addresses
# computed with nm/objdump/readelf and /proc, independently of talos).
# Skips the work when the manifest is newer than this script and the C
# source (use --force to redo). Serialised with flock, so concurrent test
# binaries can all call it.
#
# Needs: gcc, gdb (gcore), python3 (/usr/bin/python3), sqlite3, binutils.
# Kernel core dumps also need root (to set /proc/sys/kernel/core_pattern to
# "core" when it is something else; it is restored on exit).
# Exit status 77 means a required tool is missing (tests report SKIP).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../out/dumps"
force=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-dumps.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

for tool in gcc gdb gcore nm objdump readelf sqlite3 flock; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "make-dumps.sh: SKIP: $tool is not installed" >&2
    exit 77
  fi
done
PY=/usr/bin/python3
if [[ ! -x $PY ]]; then
  echo "make-dumps.sh: SKIP: /usr/bin/python3 is not installed" >&2
  exit 77
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec 9>"$out/.lock"
flock 9

manifest="$out/manifest.env"
# The dumps hold this kernel's vDSO, which talos compares with the running
# kernel's: redo them after a kernel change.
kernel_id="$(uname -rv)"
if [[ -z $force && -f $manifest && $manifest -nt "${BASH_SOURCE[0]}" && $manifest -nt "$here/statekeeper.c" ]] &&
   grep -qxF "HOST_KERNEL=$kernel_id" "$manifest"; then
  exit 0
fi
rm -f "$manifest" "$out"/*.core "$out"/*.vdso
work="$out/work"
rm -rf "$work"
mkdir -p "$work"

pids=()
orig_pattern=""
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [[ -n $orig_pattern ]]; then
    printf '%s\n' "$orig_pattern" > /proc/sys/kernel/core_pattern 2>/dev/null || true
  fi
}
trap cleanup EXIT

t0=$(date +%s.%N)
gcc -O2 -g -pthread -o "$out/statekeeper" "$here/statekeeper.c"
sk="$out/statekeeper"
sym() { nm "$sk" | awk -v n="$1" '$3 == n { print "0x" $1; exit }'; }
hex() { printf '0x%x' "$(( $1 ))"; }

declare -A M
M[HOST_KERNEL]="$kernel_id"
M[SK_BIN]="$sk"
M[SK_BUILD_ID]="$(readelf -n "$sk" | awk '/Build ID/ { print $3 }')"

# Wait until every thread of process $1 is blocked in read() (syscall 0),
# so dumps show each thread at a known point.
settle() {
  for _ in $(seq 500); do
    local busy=0
    for f in /proc/"$1"/task/*/syscall; do
      read -r nr _ < "$f" 2>/dev/null || nr=x
      [[ $nr == 0 ]] || busy=1
    done
    [[ $busy == 0 ]] && return 0
    sleep 0.01
  done
  echo "make-dumps.sh: threads of $1 did not settle in read()" >&2
  exit 1
}
# Start statekeeper with stdin on a FIFO we hold open; wait for "ready".
# Sets SK_PID and SK_HEAP. $1: name, rest: program arguments.
start_sk() {
  local name=$1; shift
  local fifo="$work/$name.in"
  mkfifo "$fifo"
  exec {fd}<>"$fifo"
  (cd "$work" && exec "$sk" "$@" <"$fifo" >"$work/$name.out" 2>&1) &
  SK_PID=$!
  pids+=("$SK_PID")
  for _ in $(seq 500); do
    grep -q '^ready' "$work/$name.out" 2>/dev/null && break
    sleep 0.01
  done
  grep -q '^ready' "$work/$name.out" || { echo "statekeeper did not start" >&2; exit 1; }
  settle "$SK_PID"
  SK_HEAP=$(sed -n 's/.* heap=\(0x[0-9a-f]*\).*/\1/p' "$work/$name.out")
}
# Load address of statekeeper in process $1.
sk_base() { awk -v p="$sk" '$6 == p && $3 == "00000000" { split($1, a, "-"); print "0x" a[1]; exit }' "/proc/$1/maps"; }
# gcore process $1 into $2.
take_gcore() {
  gcore -o "$work/gc" "$1" >/dev/null 2>&1
  mv "$work/gc.$1" "$2"
}
# Write bytes (python bytes literal) at address $2 of process $1.
poke() { "$PY" -c "import os,sys; fd=os.open('/proc/$1/mem', os.O_RDWR); os.pwrite(fd, $3, $2)"; }

# --- 1. One process: default gcore, 0x7f gcore, twice while stopped, one
#        data byte changed, then an int3 written into its code.
start_sk main
pid=$SK_PID
base=$(sk_base "$pid")
M[MAIN_PID]=$pid
M[MAIN_BASE]=$base
take_gcore "$pid" "$out/sk.gcore-default.core"
echo 0x7f > "/proc/$pid/coredump_filter"
take_gcore "$pid" "$out/sk.gcore-7f.core"
kill -STOP "$pid"
take_gcore "$pid" "$out/sk.twice-1.core"
take_gcore "$pid" "$out/sk.twice-2.core"
poke_addr=$(hex "$SK_HEAP + 0x12345")
poke "$pid" "$poke_addr" "b'\\x5a'"
take_gcore "$pid" "$out/sk.poked.core"
M[POKE_ADDR]=$poke_addr
int3_addr=$(hex "$base + $(sym sk_checksum)")
poke "$pid" "$int3_addr" "b'\\xcc'"
take_gcore "$pid" "$out/sk.int3.core"
M[INT3_ADDR]=$int3_addr
M[INT3_FUNC]=sk_checksum
kill -9 "$pid"; wait "$pid" 2>/dev/null || true

# --- 2. A byte patched in the core file itself (in sk_step's code).
cp "$out/sk.gcore-7f.core" "$out/sk.patched.core"
patch_addr=$(hex "$base + $(sym sk_step) + 2")
"$PY" - "$out/sk.patched.core" "$patch_addr" <<'EOF'
import struct, sys
path, addr = sys.argv[1], int(sys.argv[2], 16)
data = bytearray(open(path, 'rb').read())
phoff, = struct.unpack_from('<Q', data, 32)
phnum, = struct.unpack_from('<H', data, 56)
for i in range(phnum):
    p_type, flags, off, vaddr, _, filesz, memsz, _ = struct.unpack_from('<IIQQQQQQ', data, phoff + 56 * i)
    if p_type == 1 and vaddr <= addr < vaddr + filesz:
        data[off + addr - vaddr] ^= 0xff
        open(path, 'wb').write(data)
        sys.exit(0)
sys.exit('address not in any PT_LOAD with bytes')
EOF
M[PATCH_ADDR]=$patch_addr
M[PATCH_FUNC]=sk_step
M[PATCH_BASE]=$base

# --- 3. Anonymous read-write-execute memory (--jit).
start_sk jit --jit
echo 0x7f > "/proc/$SK_PID/coredump_filter"
M[JIT_ADDR]=$("$PY" -c "
import re
for l in open('/proc/$SK_PID/maps'):
    f = l.split()
    if f[1].startswith('rwx') and len(f) == 5:
        print('0x' + f[0].split('-')[0]); break")
take_gcore "$SK_PID" "$out/sk.jit.core"
kill -9 "$SK_PID"; wait "$SK_PID" 2>/dev/null || true

# --- 4. A GOT slot pointed at the heap: pause@GOT -> heap.
start_sk got
pid=$SK_PID
base=$(sk_base "$pid")
kill -STOP "$pid"
slot_link=$(readelf -rW "$sk" | awk '$5 == "pause@GLIBC_2.2.5" || $5 ~ /^pause@/ { print "0x" $1; exit }')
got_slot=$(hex "$base + $slot_link")
echo 0x7f > "/proc/$pid/coredump_filter"
poke "$pid" "$got_slot" "($SK_HEAP).to_bytes(8, 'little')"
take_gcore "$pid" "$out/sk.gothook.core"
M[GOT_SLOT]=$got_slot
M[GOT_VALUE]=$SK_HEAP
M[GOT_SYMBOL]=pause
kill -9 "$pid"; wait "$pid" 2>/dev/null || true

# --- 5. Flow: thread 2's pc moved into the middle of an instruction of
#        sk_checksum; thread 3's saved return address (read -> sk_worker)
#        replaced by the entry of op_add, which no call precedes.
start_sk flow
pid=$SK_PID
base=$(sk_base "$pid")
echo 0x7f > "/proc/$pid/coredump_filter"
mid=$("$PY" - "$sk" "$(sym sk_checksum)" <<'EOF'
import subprocess, sys
path, start = sys.argv[1], int(sys.argv[2], 16)
out = subprocess.run(['objdump', '-d', '--start-address=%#x' % start,
                      '--stop-address=%#x' % (start + 64), path],
                     capture_output=True, text=True, check=True).stdout
for line in out.splitlines():
    parts = line.split('\t')
    if len(parts) >= 2 and parts[0].strip().endswith(':'):
        nbytes = len(parts[1].split())
        if nbytes >= 3:
            print('%#x' % (int(parts[0].strip()[:-1], 16) + 1)); break
EOF
)
flow_pc=$(hex "$base + $mid")
op_add=$(hex "$base + $(sym op_add)")
cat > "$work/flow.py" <<EOF
import gdb, re
threads = sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
t2, t3 = threads[1], threads[2]
t2.switch()
gdb.execute('set \$pc = $flow_pc')
t3.switch()
f = gdb.newest_frame()
while f.type() == gdb.INLINE_FRAME:
    f = f.older()
f.select()
info = gdb.execute('info frame', to_string=True)
slot = int(re.search(r'rip at (0x[0-9a-f]+)', info).group(1), 16)
gdb.execute('set *(unsigned long *)%#x = $op_add' % slot)
with open('$work/flow.txt', 'w') as f:
    f.write('FLOW_PC_TID=%d\nFLOW_RA_TID=%d\nFLOW_RA_SLOT=%#x\n' % (t2.ptid[1], t3.ptid[1], slot))
gdb.execute('gcore $out/sk.flow.core')
gdb.execute('kill')
EOF
gdb -p "$pid" -batch -nx -x "$work/flow.py" >"$work/flow.log" 2>&1 || { cat "$work/flow.log" >&2; exit 1; }
wait "$pid" 2>/dev/null || true
while IFS='=' read -r k v; do M[$k]=$v; done < "$work/flow.txt"
M[FLOW_PC]=$flow_pc
M[FLOW_PC_FUNC]=sk_checksum
M[FLOW_RA_VALUE]=$op_add
M[FLOW_RA_FUNC]=op_add

# --- 5b. Flow: thread 2's pc moved into the alignment padding after the
#         first function whose symbol ends before the next one starts.
read -r pad_link pad_after pad_before < <(nm -S -n --defined-only "$sk" | "$PY" -c '
import sys
syms = []
for line in sys.stdin:
    f = line.split()
    if len(f) == 4 and f[2] in "Tt":
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
for (a, size, name), (b, _, nxt) in zip(syms, syms[1:]):
    if size and b - (a + size) >= 2:
        print("%#x %s %s" % (a + size, name, nxt)); break')
start_sk pad
pid=$SK_PID
base=$(sk_base "$pid")
echo 0x7f > "/proc/$pid/coredump_filter"
pad_pc=$(hex "$base + $pad_link")
cat > "$work/pad.py" <<EOF
import gdb
threads = sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
threads[1].switch()
gdb.execute('set \$pc = $pad_pc')
with open('$work/pad.txt', 'w') as f:
    f.write('PAD_TID=%d\n' % threads[1].ptid[1])
gdb.execute('gcore $out/sk.padding.core')
gdb.execute('kill')
EOF
gdb -p "$pid" -batch -nx -x "$work/pad.py" >"$work/pad.log" 2>&1 || { cat "$work/pad.log" >&2; exit 1; }
wait "$pid" 2>/dev/null || true
while IFS='=' read -r k v; do M[$k]=$v; done < "$work/pad.txt"
M[PAD_PC]=$pad_pc
M[PAD_AFTER]=$pad_after
M[PAD_BEFORE]=$pad_before

# --- 5c. Copies of sk.gcore-7f.core edited in the file (no talos): thread
#         2's registers zeroed in its NT_PRSTATUS; thread 3's NT_PRSTATUS
#         turned into an unknown note (dropped); the vDSO's build-id changed
#         (a vDSO from another kernel), with that vDSO saved alone as a
#         --vdso reference; one byte of the vDSO's code changed (same
#         build-id).
"$PY" - "$out" <<'EOF' > "$work/edits.txt"
import struct, sys
out = sys.argv[1]
src = open(out + '/sk.gcore-7f.core', 'rb').read()
phoff, = struct.unpack_from('<Q', src, 32)
phnum, = struct.unpack_from('<H', src, 56)
phdrs = [struct.unpack_from('<IIQQQQQQ', src, phoff + 56 * i) for i in range(phnum)]

def notes(data):
    """(offset of the note header, type, name, offset of desc, descsz)"""
    for p_type, _, off, _, _, filesz, _, _ in phdrs:
        if p_type != 4:
            continue
        pos, end = off, off + filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from('<III', data, pos)
            name = bytes(data[pos + 12:pos + 12 + namesz]).rstrip(b'\0')
            desc = pos + 12 + ((namesz + 3) & ~3)
            yield pos, ntype, name, desc, descsz
            pos = desc + ((descsz + 3) & ~3)

def prstatus(data, n):
    return [x for x in notes(data) if x[1] == 1 and x[2] == b'CORE'][n]

# Thread 2: every register word zero (27 words at offset 112 of prstatus).
d = bytearray(src)
_, _, _, desc, _ = prstatus(d, 1)
tid, = struct.unpack_from('<I', d, desc + 32)
d[desc + 112:desc + 112 + 27 * 8] = bytes(27 * 8)
open(out + '/sk.noregs.core', 'wb').write(d)
print('NOREGS_TID=%d' % tid)

# Thread 3: its NT_PRSTATUS becomes note type 0x7fff.
d = bytearray(src)
hdr, _, _, desc, _ = prstatus(d, 2)
tid, = struct.unpack_from('<I', d, desc + 32)
struct.pack_into('<I', d, hdr + 8, 0x7fff)
open(out + '/sk.noprstatus.core', 'wb').write(d)
print('NOPRSTATUS_TID=%d' % tid)

# The vDSO: AT_SYSINFO_EHDR (33) in NT_AUXV, then its PT_LOAD.
auxv = [x for x in notes(src) if x[1] == 6][0]
vdso = None
for i in range(0, auxv[4], 16):
    k, v = struct.unpack_from('<QQ', src, auxv[3] + i)
    if k == 33:
        vdso = v
seg = [p for p in phdrs if p[0] == 1 and p[3] == vdso][0]
voff, vlen = seg[2], seg[5]
image = src[voff:voff + vlen]
bid = image.find(b'\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00')
assert bid > 0, 'no build-id note in the vDSO'
d = bytearray(src)
for i in range(20):
    d[voff + bid + 16 + i] ^= 0x5a
open(out + '/sk.vdso-other.core', 'wb').write(d)
open(out + '/sk.vdso-other.vdso', 'wb').write(d[voff:voff + vlen])
print('VDSO_ADDR=%#x' % vdso)
# One code byte: the last byte of the first executable section (.text).
shoff, = struct.unpack_from('<Q', image, 40)
shentsize, shnum, shstrndx = struct.unpack_from('<HHH', image, 58)
code = None
for i in range(shnum):
    name, typ, flags, addr, off, size = struct.unpack_from('<IIQQQQ', image, shoff + i * shentsize)
    if flags & 4 and size:
        code = off + size - 1
        break
d = bytearray(src)
d[voff + code] ^= 0xff
open(out + '/sk.vdso-patched.core', 'wb').write(d)
print('VDSO_PATCH_ADDR=%#x' % (vdso + code))
EOF
while IFS='=' read -r k v; do M[$k]=$v; done < "$work/edits.txt"

# --- 6. Kernel core dumps, default filter and 0x7f.
pattern=$(cat /proc/sys/kernel/core_pattern)
kernel=yes
if [[ $pattern != core ]]; then
  if printf 'core\n' > /proc/sys/kernel/core_pattern 2>/dev/null; then
    orig_pattern=$pattern
  else
    kernel="no (core_pattern is '$pattern' and cannot be changed)"
  fi
fi
if [[ $kernel == yes ]]; then
  for filter in default 7f; do
    (
      ulimit -c unlimited
      start_sk "kernel-$filter"
      [[ $filter == 7f ]] && echo 0x7f > "/proc/$SK_PID/coredump_filter"
      kill -ABRT "$SK_PID"
      wait "$SK_PID" 2>/dev/null || true
      echo "$SK_PID" > "$work/kernel-$filter.pid"
    )
    kpid=$(cat "$work/kernel-$filter.pid")
    core="$work/core"
    [[ -f $core ]] || core="$work/core.$kpid"
    if [[ ! -f $core ]]; then
      kernel="no (no core file appeared in $work)"
      break
    fi
    mv "$core" "$out/sk.kernel-$filter.core"
  done
fi
M[KERNEL_CORES]=$kernel

# --- 7. Real programs, 0x7f.
fifo="$work/py.in"; mkfifo "$fifo"; exec {pyfd}<>"$fifo"
# Extension modules (their GOTs import data objects such as PyTuple_Type)
# and three more threads blocked in sleep.
MALLOC_ARENA_MAX=1 "$PY" -c '
import sys, threading, time, ctypes, json, hashlib, sqlite3, decimal, zlib
threading.stack_size(256 << 10)
for _ in range(3):
    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()' <"$fifo" >"$work/py.out" 2>&1 &  # one malloc arena: no 64 MiB reservation per thread
pypid=$!; pids+=("$pypid")
for _ in $(seq 500); do grep -q ready "$work/py.out" 2>/dev/null && break; sleep 0.01; done
echo 0x7f > "/proc/$pypid/coredump_filter"
take_gcore "$pypid" "$out/python3.gcore-7f.core"
kill -9 "$pypid"; wait "$pypid" 2>/dev/null || true
M[PYTHON_BIN]=$(readlink -f "$PY")
M[PYTHON_THREADS]=4

fifo="$work/sq.in"; mkfifo "$fifo"; exec {sqfd}<>"$fifo"
sqlite3 :memory: <"$fifo" >"$work/sq.out" 2>&1 &
sqpid=$!; pids+=("$sqpid")
printf 'create table t(a, b);\ninsert into t values (1, %s), (2, %s);\n.print ready\n' "'talos'" "'state'" >&"$sqfd"
for _ in $(seq 500); do grep -q ready "$work/sq.out" 2>/dev/null && break; sleep 0.01; done
echo 0x7f > "/proc/$sqpid/coredump_filter"
take_gcore "$sqpid" "$out/sqlite3.gcore-7f.core"
kill -9 "$sqpid"; wait "$sqpid" 2>/dev/null || true
M[SQLITE3_BIN]=$(readlink -f "$(command -v sqlite3)")

t1=$(date +%s.%N)
{
  echo "# written by corpus/dumps/make-dumps.sh in $("$PY" -c "print(round($t1 - $t0, 2))") s"
  for k in $(printf '%s\n' "${!M[@]}" | sort); do echo "$k=${M[$k]}"; done
} > "$manifest.tmp"
mv "$manifest.tmp" "$manifest"
ls -l "$out"/*.core | awk '{ s += $5 } END { printf "make-dumps.sh: %d dumps, %.1f MB\n", NR, s / 1e6 }' >&2
