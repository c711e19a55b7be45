#!/usr/bin/env python3
"""Enclave metadata for the talos audit corpus, written to the published
layouts with the Python standard library only (it shares no code with the
Rust parser it tests).

  gen.py sdk-sign IN OUT --debug|--prod [--tamper] [--isvprodid N] [--isvsvn N]
      Append a `.note.sgxmeta` section holding an SGX SDK metadata_t
      (intel/linux-sgx common/inc/internal/metadata.h) whose SIGSTRUCT
      (Intel SDM Vol. 3D 38.13) is signed with the test key.
  gen.py gramine-sig OUT --debug|--prod [--isvprodid N] [--isvsvn N]
      Write a Gramine .sig file (the raw 1808-byte SIGSTRUCT).
  gen.py expect BINARY OUT.json [--tee T]
      Read the `expect__<rule>__<n>` / `ecall__<name>` labels from the
      binary's symbol table and write the findings the audit must report.

No SGX hardware or Intel signing key is involved. The RSA-3072 test key
(e = 3) is generated deterministically from a fixed seed; MRENCLAVE is a
stand-in (SHA-256 of the enclave's name), not a measurement of its pages.
"""

import hashlib
import json
import random
import struct
import subprocess
import sys

SIGSTRUCT_SIZE = 1808
METADATA_MAGIC = 0x86A80294635D0E4C
HEADER = bytes([6, 0, 0, 0, 0xE1, 0, 0, 0, 0, 0, 1, 0])
HEADER2 = bytes([1, 1, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 1, 0, 0, 0])
# DER prefix of a SHA-256 DigestInfo (PKCS#1 v1.5, RFC 8017 9.2).
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

FLAG_INIT, FLAG_DEBUG, FLAG_MODE64BIT = 1, 2, 4


def is_probable_prime(n, rng, rounds=40):
    if n < 2:
        return False
    small = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def prime(rng, bits):
    while True:
        c = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if c % 3 == 2 and is_probable_prime(c, rng):
            return c


def test_key(seed="talos sgx test key v1"):
    """Deterministic RSA-3072 key with e = 3 (as SGX requires), cached in
    $TALOS_SGX_KEY_CACHE when set (generating it takes seconds)."""
    import os
    cache = os.environ.get("TALOS_SGX_KEY_CACHE")
    if cache and os.path.exists(cache):
        doc = json.load(open(cache))
        if doc.get("seed") == seed:
            return int(doc["n"], 16), int(doc["d"], 16)
    n, d = generate_key(seed)
    if cache:
        with open(cache, "w") as f:
            json.dump({"seed": seed, "n": format(n, "x"), "d": format(d, "x")}, f)
    return n, d


def generate_key(seed):
    rng = random.Random(seed)
    while True:
        p, q = prime(rng, 1536), prime(rng, 1536)
        n = p * q
        if p != q and n.bit_length() == 3072:
            d = pow(3, -1, (p - 1) * (q - 1))
            return n, d


def sign(n, d, message):
    h = hashlib.sha256(message).digest()
    t = SHA256_PREFIX + h
    em = b"\x00\x01" + b"\xff" * (384 - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n)


def sigstruct(name, debug, isvprodid=1, isvsvn=1, tamper=False):
    n, d = test_key()
    flags = FLAG_INIT * 0 | FLAG_MODE64BIT | (FLAG_DEBUG if debug else 0)
    xfrm = 0x3
    header = bytearray(128)
    header[0:12] = HEADER
    struct.pack_into("<I", header, 12, 0)            # type: not debug-signed
    struct.pack_into("<I", header, 16, 0)            # vendor: not Intel
    struct.pack_into("<I", header, 20, 0x20260101)   # date, BCD yyyymmdd
    header[24:40] = HEADER2
    body = bytearray(128)
    struct.pack_into("<I", body, 0, 0)               # misc_select
    struct.pack_into("<I", body, 4, 0xFFFFFFFF)      # misc_mask
    struct.pack_into("<QQ", body, 28, flags, xfrm)   # attributes (928)
    struct.pack_into("<QQ", body, 44, 0xFFFFFFFFFFFFFFFB, 0xFFFFFFFFFFF9FF1B)  # mask (944)
    body[60:92] = hashlib.sha256(b"talos test enclave " + name.encode()).digest()  # (960)
    struct.pack_into("<HH", body, 124, isvprodid, isvsvn)  # (1024)
    s = sign(n, d, bytes(header) + bytes(body))
    q1 = s * s // n
    q2 = (s * s * s - q1 * s * n) // n
    out = bytearray(SIGSTRUCT_SIZE)
    out[0:128] = header
    out[128:512] = n.to_bytes(384, "little")
    struct.pack_into("<I", out, 512, 3)
    out[516:900] = s.to_bytes(384, "little")
    out[900:1028] = body
    out[1040:1424] = q1.to_bytes(384, "little")
    out[1424:1808] = q2.to_bytes(384, "little")
    if tamper:
        out[960] ^= 0x01  # change MRENCLAVE after signing
    return bytes(out)


def metadata_note(css, debug):
    """The .note.sgxmeta contents: ELF note with name "sgx_metadata\\0"
    (unpadded) followed by one 4096-byte metadata_t. The section gets
    alignment 1, so its size is exactly header + name + descsz, which is
    what the SDK's loader checks."""
    meta = bytearray(4096)
    flags = FLAG_MODE64BIT | (FLAG_DEBUG if debug else 0)
    struct.pack_into("<QQIIIIII", meta, 0, METADATA_MAGIC, (2 << 32) | 4, 4096, 1, 1, 2632, 0, 0)
    struct.pack_into("<Q", meta, 40, 0x100000)       # enclave_size
    struct.pack_into("<QQ", meta, 48, flags, 0x3)    # attributes
    meta[64:64 + SIGSTRUCT_SIZE] = css
    name = b"sgx_metadata\x00"
    note = struct.pack("<III", len(name), len(meta), 1) + name + bytes(meta)
    return note


def cmd_sdk_sign(argv):
    src, dst = argv[0], argv[1]
    debug = "--debug" in argv
    tamper = "--tamper" in argv
    name = dst.rsplit("/", 1)[-1]
    css = sigstruct(name, debug, tamper=tamper)
    note_path = dst + ".sgxmeta.bin"
    with open(note_path, "wb") as f:
        f.write(metadata_note(css, debug))
    subprocess.run(
        ["objcopy", "--add-section", ".note.sgxmeta=" + note_path,
         "--set-section-flags", ".note.sgxmeta=contents,readonly",
         "--set-section-alignment", ".note.sgxmeta=1", src, dst],
        check=True)
    import os
    os.remove(note_path)


def arg(argv, flag, default):
    if flag in argv:
        return int(argv[argv.index(flag) + 1])
    return default


def cmd_gramine_sig(argv):
    dst = argv[0]
    name = dst.rsplit("/", 1)[-1]
    css = sigstruct(name, "--debug" in argv, arg(argv, "--isvprodid", 1), arg(argv, "--isvsvn", 1))
    with open(dst, "wb") as f:
        f.write(css)


def elf_symbols(path):
    """(name, value) of every .symtab symbol of an ELF64 little-endian file."""
    data = open(path, "rb").read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, path
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], 24):
            st_name, _info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, off)
            end = data.index(b"\x00", strtab[4] + st_name)
            out.append((data[strtab[4] + st_name:end].decode(), value))
    return out


# What each Keystone ecall label must be reported as.
ECALL_RULES = {
    "ocall": None,
    "attest": None,
    "leave": None,
    "linux_write": "keystone-linux-syscall",
    "unknown_runtime_call": "keystone-unknown-ecall",
    "call_by_number": "keystone-unknown-ecall",
}


def cmd_expect(argv):
    binary, dst = argv[0], argv[1]
    image_rules = [a for a in argv[2:] if not a.startswith("--")]
    findings, ecalls = [], []
    for name, value in elf_symbols(binary):
        if name.startswith("expect__"):
            rule = name.split("__")[1].replace("_", "-")
            findings.append({"rule": rule, "addr": value})
        elif name.startswith("ecall__"):
            label = name[len("ecall__"):]
            ecalls.append({"label": label, "addr": value})
            if ECALL_RULES.get(label):
                findings.append({"rule": ECALL_RULES[label], "addr": value})
    findings.sort(key=lambda f: (f["rule"], f["addr"]))
    ecalls.sort(key=lambda e: e["addr"])
    doc = {"binary": binary.rsplit("/", 1)[-1], "findings": findings,
           "ecalls": ecalls, "image_rules": sorted(image_rules)}
    with open(dst, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    {"sdk-sign": cmd_sdk_sign, "gramine-sig": cmd_gramine_sig, "expect": cmd_expect}[cmd](argv)


if __name__ == "__main__":
    main()
