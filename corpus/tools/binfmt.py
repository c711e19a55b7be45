"""Minimal ELF and PE/COFF readers (python3 stdlib only) for the talos corpus.

Used to write ground truth (`<binary>.truth.json`) from the symbol table of an
unstripped binary, and to read the bytes of a function for build-to-build diffs.

ELF: 32/64-bit, little or big endian; STT_FUNC and STT_GNU_IFUNC symbols from
.symtab whose section is executable (SHF_EXECINSTR).
PE32/PE32+: COFF symbol table (kept by mingw ld in unstripped images); function
symbols (complex type DT_FCN) in executable sections. COFF symbols carry no
size, so sizes come from the .pdata (x64 unwind) entry that starts at the
symbol, else from the distance to the next function symbol or the end of the
section (recorded per function as "size_from").
"""

import hashlib
import struct

SHF_EXECINSTR = 0x4
STT_FUNC = 2
STT_GNU_IFUNC = 10
BIND_RANK = {1: 0, 2: 1, 0: 2}  # GLOBAL, WEAK, LOCAL: preferred name first

ELF_MACHINES = {3: "i386", 62: "x86_64", 183: "aarch64", 243: "riscv"}
PE_MACHINES = {0x8664: "x86_64", 0x14C: "i386", 0xAA64: "aarch64"}

IMAGE_SCN_CNT_CODE = 0x20
IMAGE_SCN_MEM_EXECUTE = 0x20000000


class FormatError(Exception):
    pass


def _cstr(buf, off):
    end = buf.find(b"\0", off)
    if end < 0:
        end = len(buf)
    return buf[off:end].decode("utf-8", "replace")


class Image:
    """Common result: format, machine, bits, entry, exec sections, functions."""

    def __init__(self):
        self.format = ""
        self.machine = ""
        self.bits = 0
        self.entry = 0
        self.pie = False
        self.image_base = 0
        self.sections = []  # dicts: name, addr, size, offset, filesize, exec
        self.functions = []  # dicts: addr, size, name (+ aliases, size_from)
        # Code symbols not typed as functions (STT_NOTYPE in an executable
        # section: hand-written assembly entry points); a scorer treats a
        # function found there as neither right nor wrong.
        self.other_code_symbols = []  # dicts: addr, name
        self.has_symtab = False
        self.data = b""

    def exec_sections(self):
        return [s for s in self.sections if s["exec"]]

    def section_size(self, name):
        return sum(s["size"] for s in self.sections if s["name"] == name)

    def read(self, addr, size):
        """Bytes at virtual address `addr` from the file (None if not file-backed)."""
        for s in self.sections:
            if s["filesize"] and s["addr"] <= addr and addr + size <= s["addr"] + s["filesize"]:
                off = s["offset"] + (addr - s["addr"])
                return self.data[off : off + size]
        return None


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x7fELF":
        img = _load_elf(data)
    elif data[:2] == b"MZ":
        img = _load_pe(data)
    else:
        raise FormatError(f"{path}: neither ELF nor PE")
    img.data = data
    return img


def _merge_aliases(funcs):
    """funcs: list of (addr, size, name, rank). One entry per address: the
    best-ranked name, the largest size, other names as aliases."""
    by_addr = {}
    for addr, size, name, rank in funcs:
        by_addr.setdefault(addr, []).append((rank, name, size))
    out = []
    for addr in sorted(by_addr):
        group = sorted(by_addr[addr])
        names = []
        for _, n, _ in group:
            if n not in names:
                names.append(n)
        entry = {"addr": addr, "size": max(g[2] for g in group), "name": names[0]}
        if len(names) > 1:
            entry["aliases"] = names[1:]
        out.append(entry)
    return out


def _load_elf(d):
    img = Image()
    img.format = "elf"
    ei_class, ei_data = d[4], d[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise FormatError("bad ELF ident")
    e = "<" if ei_data == 1 else ">"
    is64 = ei_class == 2
    img.bits = 64 if is64 else 32
    if is64:
        (e_type, e_machine, _, e_entry, _, e_shoff, _, _, _, _, e_shentsize, e_shnum, e_shstrndx) = (
            struct.unpack_from(e + "HHIQQQIHHHHHH", d, 16))
    else:
        (e_type, e_machine, _, e_entry, _, e_shoff, _, _, _, _, e_shentsize, e_shnum, e_shstrndx) = (
            struct.unpack_from(e + "HHIIIIIHHHHHH", d, 16))
    img.machine = ELF_MACHINES.get(e_machine, f"elf-machine-{e_machine}")
    if img.machine == "riscv":
        img.machine = "riscv64" if is64 else "riscv32"
    img.entry = e_entry
    img.pie = e_type == 3  # ET_DYN (an executable here, so PIE)
    raw = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        if is64:
            name, typ, flags, addr, foff, size, link, _, _, entsize = struct.unpack_from(
                e + "IIQQQQIIQQ", d, off)
        else:
            name, typ, flags, addr, foff, size, link, _, _, entsize = struct.unpack_from(
                e + "IIIIIIIIII", d, off)
        raw.append((name, typ, flags, addr, foff, size, link, entsize))
    shstr_off = raw[e_shstrndx][4] if e_shstrndx < len(raw) else 0
    for i, (name, typ, flags, addr, foff, size, link, entsize) in enumerate(raw):
        img.sections.append({
            "name": _cstr(d, shstr_off + name) if i else "",
            "addr": addr,
            "size": size,
            "offset": foff,
            "filesize": 0 if typ == 8 else size,  # SHT_NOBITS
            "exec": bool(flags & SHF_EXECINSTR) and bool(flags & 0x2),  # and SHF_ALLOC
        })
    funcs = []
    other = []
    for (name, typ, flags, addr, foff, size, link, entsize) in raw:
        if typ != 2:  # SHT_SYMTAB
            continue
        img.has_symtab = True
        strtab_off = raw[link][4]
        n = size // entsize
        for k in range(1, n):
            so = foff + k * entsize
            if is64:
                st_name, st_info, _, st_shndx, st_value, st_size = struct.unpack_from(
                    e + "IBBHQQ", d, so)
            else:
                st_name, st_value, st_size, st_info, _, st_shndx = struct.unpack_from(
                    e + "IIIBBH", d, so)
            stype, bind = st_info & 0xF, st_info >> 4
            if stype not in (STT_FUNC, STT_GNU_IFUNC, 0):
                continue
            if st_shndx == 0 or st_shndx >= 0xFF00 or st_shndx >= len(img.sections):
                continue
            if not img.sections[st_shndx]["exec"]:
                continue
            if stype == 0:  # STT_NOTYPE
                sname = _cstr(d, strtab_off + st_name)
                # Global/weak labels, and local labels of hand-written
                # assembly (crt1's `load_gp` on RISC-V, `__wrap_main` on
                # AArch64); not compiler-local `.L` labels nor mapping
                # symbols (`$x`, `$d`).
                if sname and (bind != 0 or not sname.startswith((".L", "$"))):
                    other.append({"addr": st_value, "name": sname})
                continue
            funcs.append((st_value, st_size, _cstr(d, strtab_off + st_name), BIND_RANK.get(bind, 3)))
    img.functions = _merge_aliases(funcs)
    func_addrs = {f["addr"] for f in img.functions}
    seen = {}
    for o in sorted(other, key=lambda o: (o["addr"], o["name"])):
        if o["addr"] not in func_addrs and o["addr"] not in seen:
            seen[o["addr"]] = o
    img.other_code_symbols = list(seen.values())
    return img


def _load_pe(d):
    img = Image()
    img.format = "pe"
    (pe_off,) = struct.unpack_from("<I", d, 0x3C)
    if d[pe_off : pe_off + 4] != b"PE\0\0":
        raise FormatError("bad PE signature")
    coff = pe_off + 4
    machine, nsect, _ts, symptr, nsyms, opt_size, _ch = struct.unpack_from("<HHIIIHH", d, coff)
    img.machine = PE_MACHINES.get(machine, f"pe-machine-{machine:#x}")
    opt = coff + 20
    (magic,) = struct.unpack_from("<H", d, opt)
    (entry_rva,) = struct.unpack_from("<I", d, opt + 16)
    if magic == 0x20B:
        img.bits = 64
        (img.image_base,) = struct.unpack_from("<Q", d, opt + 24)
        ndirs_off, dirs = opt + 108, opt + 112
    elif magic == 0x10B:
        img.bits = 32
        (img.image_base,) = struct.unpack_from("<I", d, opt + 28)
        ndirs_off, dirs = opt + 92, opt + 96
    else:
        raise FormatError("bad optional header magic")
    (dll_chars,) = struct.unpack_from("<H", d, opt + 70)
    img.pie = bool(dll_chars & 0x40)  # IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE
    img.entry = img.image_base + entry_rva
    (ndirs,) = struct.unpack_from("<I", d, ndirs_off)
    exc_rva = exc_size = 0
    if ndirs > 3:
        exc_rva, exc_size = struct.unpack_from("<II", d, dirs + 3 * 8)
    strtab = symptr + nsyms * 18 if symptr else 0
    sect_tab = opt + opt_size
    for i in range(nsect):
        so = sect_tab + i * 40
        raw_name = d[so : so + 8].rstrip(b"\0").decode("utf-8", "replace")
        if raw_name.startswith("/") and strtab:
            raw_name = _cstr(d, strtab + int(raw_name[1:]))
        vsize, vaddr, rawsize, rawptr = struct.unpack_from("<IIII", d, so + 8)
        (chars,) = struct.unpack_from("<I", d, so + 36)
        img.sections.append({
            "name": raw_name,
            "addr": img.image_base + vaddr,
            "size": vsize,
            "offset": rawptr,
            "filesize": min(vsize, rawsize),
            "exec": bool(chars & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE)),
        })
    # .pdata: RUNTIME_FUNCTION {BeginAddress, EndAddress, UnwindData} (x64)
    pdata = {}
    if exc_size and img.bits == 64:
        blob = img_read_rva(img, d, exc_rva, exc_size)
        for k in range(0, len(blob) - 11, 12):
            b, e_, _ = struct.unpack_from("<III", blob, k)
            if b:
                pdata[img.image_base + b] = e_ - b
    if not symptr or not nsyms:
        return img
    img.has_symtab = True
    raw = []
    k = 0
    while k < nsyms:
        so = symptr + k * 18
        name8 = d[so : so + 8]
        value, secnum, typ, sclass, naux = struct.unpack_from("<IhHBB", d, so + 8)
        if name8[:4] == b"\0\0\0\0":
            (soff,) = struct.unpack_from("<I", name8, 4)
            name = _cstr(d, strtab + soff)
        else:
            name = name8.rstrip(b"\0").decode("utf-8", "replace")
        k += 1 + naux
        if secnum <= 0 or secnum > len(img.sections):
            continue
        sec = img.sections[secnum - 1]
        if not sec["exec"]:
            continue
        raw.append((sec["addr"] + value, name, typ, sclass, secnum))
    # all symbols in executable sections, to bound functions without .pdata
    starts = sorted({a for a, _, _, _, _ in raw})
    funcs = []
    size_from = {}
    import bisect

    for addr, name, typ, sclass, secnum in raw:
        if (typ & 0x30) != 0x20:  # complex type DT_FCN
            continue
        if addr in pdata:
            size, src = pdata[addr], "pdata"
        else:
            sec = img.sections[secnum - 1]
            i = bisect.bisect_right(starts, addr)
            end = sec["addr"] + sec["size"]
            if i < len(starts) and starts[i] < end:
                end = starts[i]
            size, src = end - addr, "next_symbol"
        rank = {2: 0, 105: 1, 3: 2}.get(sclass, 3)  # EXTERNAL, WEAK_EXTERNAL, STATIC
        funcs.append((addr, size, name, rank))
        prev = size_from.get(addr)
        if prev != "pdata":
            size_from[addr] = src
    # GNU as for pe-x86-64 drops local (static) symbols whose name starts with
    # "L" (it takes them for assembler-local labels), so such functions have no
    # COFF symbol. GCC gives every x64 function a .pdata entry: add the entries
    # that no function symbol covers, unnamed.
    named = {a for a, _, _, _ in funcs}
    for addr in sorted(pdata):
        if addr not in named:
            funcs.append((addr, pdata[addr], f"sub_{addr:x}", 9))
            size_from[addr] = "pdata_unnamed"
    img.functions = _merge_aliases(funcs)
    # External labels in code that are not typed as functions: hand-written
    # assembly (libgcc's `___chkstk_ms`) and the import thunks of import
    # libraries that do not type them (`jmp [rip+__imp_X]`). Neither right nor
    # wrong when predicted, like ELF's global NOTYPE labels.
    func_addrs = {f["addr"] for f in img.functions}
    seen = {}
    for addr, name, typ, sclass, _ in sorted(raw):
        if (typ & 0x30) == 0x20 or sclass not in (2, 105) or addr in func_addrs:
            continue
        if name.lstrip("_") in ("CTOR_LIST__", "DTOR_LIST__"):
            continue  # the CRT's constructor lists: data the linker puts in .text
        seen.setdefault(addr, {"addr": addr, "name": name})
    img.other_code_symbols = list(seen.values())
    for f in img.functions:
        f["size_from"] = size_from[f["addr"]]
        if f["size_from"] == "next_symbol":
            # import thunk `jmp qword ptr [rip+__imp_X]` (the PE analogue of a PLT entry)
            b = img_read_rva(img, d, f["addr"] - img.image_base, 2)
            if b == b"\xff\x25":
                f["thunk"] = True
    return img


def img_read_rva(img, d, rva, size):
    va = img.image_base + rva
    for s in img.sections:
        if s["addr"] <= va < s["addr"] + s["size"]:
            off = s["offset"] + (va - s["addr"])
            return d[off : off + size]
    return b""


def sha256(path):
    """Hex SHA-256 of a file, read 1 MiB at a time (the manifest's hashes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
