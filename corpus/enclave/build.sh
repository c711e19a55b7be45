#!/usr/bin/env bash
# Build the enclave-like programs of the talos audit corpus: SGX-SDK-like
# enclaves, Gramine applications with manifests and .sig files, Keystone
# eapps; each with a clean twin. See corpus/enclave/README.md.
#
#   corpus/enclave/build.sh [OUT]     (default: corpus/out/enclave)
#
# Needs gcc (x86-64), binutils (objcopy, strip), python3, and for the
# Keystone eapps riscv64-linux-gnu-gcc (skipped with a note when missing,
# unless TALOS_REQUIRE_CORPUS=1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../out/enclave}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
export LC_ALL=C TZ=UTC
gen() { python3 "$here/gen.py" "$@"; }
# The deterministic RSA test key, generated once (pure Python, seconds).
export TALOS_SGX_KEY_CACHE="$out/.sgx-test-key.json"

# --- SGX SDK-like enclaves (shared objects, no libc, exported enclave_entry)
sdk="-O2 -fPIC -shared -nostdlib -nostartfiles -ffreestanding -Wl,-Bsymbolic -Wl,--no-undefined -Wl,--build-id=sha1 -Wl,--hash-style=both"
# Every hardening flag off, every enclave-illegal instruction in.
gcc $sdk -DBAD -fno-toplevel-reorder -fno-stack-protector -fcf-protection=none \
    -Wl,-z,execstack -Wl,-z,norelro -Wl,-z,lazy -Wl,-z,notext -Wl,--no-warn-rwx-segments \
    -Wl,--no-warn-execstack -o "$out/sgx-bad.unsigned.so" sgx_enclave.c
# The clean twin: stack protector, CET, full RELRO, LVI load hardening.
gcc $sdk -fstack-protector-strong -fcf-protection=full \
    -Wa,-mlfence-after-load=yes -Wa,-mlfence-before-indirect-branch=all -Wa,-mlfence-before-ret=not \
    -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack -o "$out/sgx-clean.unsigned.so" sgx_enclave.c
# The same enclave rebuilt with an extra function in front: every address
# moves, no finding's fingerprint may change.
gcc $sdk -DBAD -DPAD -fno-toplevel-reorder -fno-stack-protector -fcf-protection=none \
    -Wl,-z,execstack -Wl,-z,norelro -Wl,-z,lazy -Wl,-z,notext -Wl,--no-warn-rwx-segments \
    -Wl,--no-warn-execstack -o "$out/sgx-bad-rebuilt.unsigned.so" sgx_enclave.c
gen sdk-sign "$out/sgx-bad.unsigned.so" "$out/sgx-bad.so" --debug
gen sdk-sign "$out/sgx-bad-rebuilt.unsigned.so" "$out/sgx-bad-rebuilt.so" --debug
gen sdk-sign "$out/sgx-clean.unsigned.so" "$out/sgx-clean.so" --prod
gen sdk-sign "$out/sgx-clean.unsigned.so" "$out/sgx-tampered.so" --prod --tamper
gen expect "$out/sgx-bad.so" "$out/sgx-bad.so.expected.json" \
    hardening-wx-segment hardening-exec-stack hardening-textrel hardening-no-relro \
    hardening-no-stack-protector hardening-no-cet sgx-debug-enclave sgx-lvi-unhardened
gen expect "$out/sgx-clean.so" "$out/sgx-clean.so.expected.json"
gen expect "$out/sgx-tampered.so" "$out/sgx-tampered.so.expected.json" sgx-signature-invalid

# --- Gramine applications (glibc, dynamic PIE) with manifest and .sig
gcc -O2 -DBAD -pie -fPIE -fno-stack-protector -fcf-protection=none -Wl,-z,relro -Wl,-z,lazy \
    -o "$out/gramine-app" gramine_app.c
# Debian's crt objects carry no CET property; -z ibt -z shstk marks the
# output anyway (our code is compiled with -fcf-protection=full).
gcc -O2 -pie -fPIE -fstack-protector-strong -fcf-protection=full -Wl,-z,relro -Wl,-z,now \
    -Wl,-z,ibt -Wl,-z,shstk -o "$out/gramine-clean" gramine_app.c
cat > "$out/gramine-app.manifest.sgx" <<'TOML'
# Written by corpus/enclave/build.sh to Gramine's manifest syntax.
libos.entrypoint = "/gramine-app"
loader.entrypoint = "file:/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so"
loader.log_level = "trace"
loader.insecure__use_cmdline_argv = true
loader.insecure__use_host_env = false
sgx.debug = true
sgx.isvprodid = 1
sgx.isvsvn = 2
sgx.enclave_size = "256M"
sgx.max_threads = 4
sgx.file_check_policy = "allow_all_but_log"
sgx.insecure__allow_memfaults_without_exinfo = true
sgx.trusted_files = [ "file:/gramine-app" ]
sgx.allowed_files = [ "file:/tmp/scratch" ]
fs.mounts = [ { path = "/gramine-app", uri = "file:gramine-app" } ]
TOML
cat > "$out/gramine-clean.manifest.sgx" <<'TOML'
# Written by corpus/enclave/build.sh to Gramine's manifest syntax.
libos.entrypoint = "/gramine-clean"
loader.entrypoint = "file:/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so"
loader.log_level = "error"
loader.argv = [ "gramine-clean", "x" ]
sgx.debug = false
sgx.isvprodid = 1
sgx.isvsvn = 1
sgx.enclave_size = "256M"
sgx.max_threads = 4
sgx.remote_attestation = "dcap"
sgx.trusted_files = [ "file:/gramine-clean" ]
fs.mounts = [ { path = "/gramine-clean", uri = "file:gramine-clean" } ]
TOML
# The bad app's .sig is a DEBUG enclave signed from another manifest
# (isvsvn 1, manifest says 2).
gen gramine-sig "$out/gramine-app.sig" --debug --isvprodid 1 --isvsvn 1
gen gramine-sig "$out/gramine-clean.sig" --prod --isvprodid 1 --isvsvn 1
gen expect "$out/gramine-app" "$out/gramine-app.expected.json" \
    sgx-debug-enclave gramine-insecure-option gramine-file-check-policy gramine-log-level \
    gramine-allowed-files gramine-sig-mismatch hardening-no-bind-now hardening-no-stack-protector \
    hardening-no-cet
gen expect "$out/gramine-clean" "$out/gramine-clean.expected.json"

# --- Keystone eapps (static RISC-V, no libc)
if command -v riscv64-linux-gnu-gcc >/dev/null; then
  ks="-O2 -static -nostdlib -nostartfiles -ffreestanding -Wl,--build-id=sha1"
  riscv64-linux-gnu-gcc $ks -DBAD -fno-stack-protector -o "$out/keystone-bad" keystone_eapp.c
  riscv64-linux-gnu-gcc $ks -fstack-protector-strong -o "$out/keystone-clean" keystone_eapp.c
  gen expect "$out/keystone-bad" "$out/keystone-bad.expected.json" hardening-no-stack-protector
  gen expect "$out/keystone-clean" "$out/keystone-clean.expected.json"
elif [[ "${TALOS_REQUIRE_CORPUS:-}" == 1 ]]; then
  echo "build.sh: riscv64-linux-gnu-gcc is required (apt-get install gcc-riscv64-linux-gnu)" >&2
  exit 1
else
  echo "SKIPPED keystone: riscv64-linux-gnu-gcc missing (apt-get install gcc-riscv64-linux-gnu)"
fi

# Stripped copies (audits must not depend on symbols).
for f in sgx-bad.so sgx-clean.so gramine-app gramine-clean; do
  strip --strip-all -o "$out/${f}.stripped" "$out/$f"
done
rm -f "$out"/*.unsigned.so
echo "enclave corpus built in $out"
