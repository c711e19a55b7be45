#!/usr/bin/env bash
# Build the image-hardening corpus of `talos audit`: mingw PE32+ builds of
# one program with and without each hardening flag, a PE enclave-like DLL,
# and ELF files whose headers cannot be parsed. See corpus/hardening/README.md.
#
#   corpus/hardening/build.sh [OUT]     (default: corpus/out/hardening)
#
# OUT/manifest.json lists every file with the rule ids the build flags call
# for (expected from the flags, not computed with talos) and, for the DLL,
# the addresses of its enclave-illegal instructions (from objdump).
# Needs x86_64-w64-mingw32-gcc, binutils and python3. Exit 77 when mingw is
# missing. Re-running rebuilds (a few seconds); builds are reproducible.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../out/hardening}"
cc=x86_64-w64-mingw32-gcc
objdump=x86_64-w64-mingw32-objdump
for tool in "$cc" "$objdump" python3 gcc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "corpus/hardening/build.sh: SKIP: $tool is not installed" >&2
    exit 77
  fi
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -f "$out/manifest.json"
cd "$here"
export LC_ALL=C TZ=UTC
# Reproducible PE files: no link timestamp, no build path in the image.
common=(-O2 -Wl,--no-insert-timestamp -ffile-prefix-map="$here"=.)

# name|flags|rules the flags call for (besides the ones every mingw build
# has: no Control Flow Guard, no CET-compat, no Authenticode signature).
builds=(
  "pe-default.exe||hardening-pe-no-gs"
  # ld drops HIGH_ENTROPY_VA along with DYNAMIC_BASE.
  "pe-nodynamicbase.exe|-Wl,--disable-dynamicbase|hardening-pe-no-dynamicbase hardening-pe-no-high-entropy-va hardening-pe-no-gs"
  "pe-nonxcompat.exe|-Wl,--disable-nxcompat|hardening-pe-no-nx-compat hardening-pe-no-gs"
  "pe-nohighentropy.exe|-Wl,--disable-high-entropy-va|hardening-pe-no-high-entropy-va hardening-pe-no-gs"
  "pe-ssp.exe|-fstack-protector-strong|"
  "pe-wx.exe|-DWX|hardening-pe-wx-section hardening-pe-no-gs"
  "pe-stripped.exe|-s|"
)
always="hardening-pe-no-cfg hardening-pe-no-cet-compat hardening-pe-unsigned"
entries=()
for b in "${builds[@]}"; do
  IFS='|' read -r name flags rules <<<"$b"
  # shellcheck disable=SC2086
  $cc "${common[@]}" $flags -o "$out/$name" hardened.c
  unchecked=""
  # Stripped, no stack protector, no load configuration: nothing shows
  # whether functions check cookies.
  [[ $name == pe-stripped.exe ]] && unchecked="hardening-pe-no-gs"
  entries+=("$(python3 -c 'import json,sys; print(json.dumps({"file": sys.argv[1], "flags": sys.argv[2], "rules": sorted((sys.argv[3] + " " + sys.argv[4]).split()), "unchecked": sys.argv[5].split()}))' \
    "$name" "$flags" "$rules" "$always" "$unchecked")")
done

# The PE enclave-like DLL: no C library, one export.
$cc "${common[@]}" -shared -nostdlib -Wl,--entry=DllMain -o "$out/pe-enclave.dll" pe_enclave.c
illegal=$("$objdump" -d --no-show-raw-insn "$out/pe-enclave.dll" | python3 -c '
import json, re, sys
names = {"cpuid": "sgx-cpuid", "rdtsc": "sgx-rdtsc", "syscall": "sgx-syscall"}
func, out = None, []
for line in sys.stdin:
    m = re.match(r"^([0-9a-f]+) <(\S+)>:", line)
    if m:
        func = m.group(2)
        continue
    m = re.match(r"^\s+([0-9a-f]+):\s+(\w+)", line)
    if m and func == "enclave_entry" and m.group(2) in names:
        out.append({"rule": names[m.group(2)], "addr": int(m.group(1), 16)})
print(json.dumps(out))')
entries+=("$(python3 -c 'import json,sys; print(json.dumps({"file": "pe-enclave.dll", "tee": "sgx", "export": "enclave_entry", "instructions": json.loads(sys.argv[1])}))' "$illegal")")

# ELF files whose headers cannot be parsed: the program header table past
# the end of the file, and a file cut inside its ELF header.
gcc -O2 -o "$out/elf-ok" hardened.c
python3 - "$out" <<'EOF'
import struct, sys
out = sys.argv[1]
elf = bytearray(open(out + "/elf-ok", "rb").read())
bad = bytearray(elf)
struct.pack_into("<Q", bad, 32, len(elf) + 0x10000)  # e_phoff past EOF
open(out + "/elf-bad-phoff", "wb").write(bad)
open(out + "/elf-truncated", "wb").write(elf[:40])
EOF
entries+=('{"file": "elf-bad-phoff", "headers": "unparseable"}')
entries+=('{"file": "elf-truncated", "headers": "unparseable"}')

{
  printf '{\n  "files": [\n'
  for i in "${!entries[@]}"; do
    sep=","; [[ $i -eq $((${#entries[@]} - 1)) ]] && sep=""
    printf '    %s%s\n' "${entries[$i]}" "$sep"
  done
  printf '  ]\n}\n'
} > "$out/manifest.json.tmp"
mv "$out/manifest.json.tmp" "$out/manifest.json"
echo "hardening corpus built in $out (${#entries[@]} files)"
