#!/usr/bin/env python3
"""Build the talos test corpus (called by corpus/build.sh; python3 stdlib only).

Compiles real upstream C code (from -sys crates fetched by cargo) with real
compilers for several architectures, keeps unstripped + stripped copies, and
writes ground truth from the unstripped symbol tables plus a manifest.
See corpus/README.md for the layout.
"""

import argparse
import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import binfmt  # noqa: E402

CORPUS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAINS = os.path.join(CORPUS, "mains")

# ---------------------------------------------------------------- toolchains
# name -> driver, strip tool, per-arch flags. Flags common to every build are in
# COMMON_CFLAGS; everything else is gcc's (or clang's) Debian default: PIE,
# .eh_frame, --build-id, dynamic glibc.
ARCHES = {
    "x86_64": dict(cc=["gcc"], cxx=["g++"], strip="strip", fmt="elf", compiler="gcc",
                   apt="gcc g++", bases=True),
    "i386": dict(cc=["gcc", "-m32"], cxx=["g++", "-m32"], strip="strip", fmt="elf",
                 compiler="gcc", apt="gcc-12-multilib g++-12-multilib", bases=False),
    "riscv64": dict(cc=["riscv64-linux-gnu-gcc"], cxx=["riscv64-linux-gnu-g++"],
                    strip="riscv64-linux-gnu-strip", fmt="elf",
                    compiler="gcc", apt="gcc-riscv64-linux-gnu g++-riscv64-linux-gnu", bases=True),
    "aarch64": dict(cc=["aarch64-linux-gnu-gcc"], cxx=["aarch64-linux-gnu-g++"],
                    strip="aarch64-linux-gnu-strip", fmt="elf",
                    compiler="gcc", apt="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu", bases=True),
    # PE32+; --no-insert-timestamp keeps the COFF TimeDateStamp at 0 (reproducible).
    # C++ uses the posix-threads flavour of mingw g++ (the win32 one has no
    # std::mutex in gcc 12), linked statically (no libstdc++/winpthread DLLs).
    "mingw": dict(cc=["x86_64-w64-mingw32-gcc"], cxx=["x86_64-w64-mingw32-g++-posix"],
                  cxx_ldflags=["-static"],
                  strip="x86_64-w64-mingw32-strip", fmt="pe",
                  compiler="gcc", apt="gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64",
                  ldflags=["-Wl,--no-insert-timestamp"], bases=False, exe=".exe"),
    "x86_64-clang": dict(cc=["clang"], cxx=["clang++"], strip="strip", fmt="elf",
                         compiler="clang", apt="clang", bases=False),
    # clang cross-compiling with the Debian riscv64 gcc's sysroot (rv64gc, lp64d).
    "riscv64-clang": dict(cc=["clang", "--target=riscv64-linux-gnu"],
                          cxx=["clang++", "--target=riscv64-linux-gnu"],
                          strip="riscv64-linux-gnu-strip", fmt="elf", compiler="clang",
                          apt="clang g++-riscv64-linux-gnu", bases=False),
}
ARCH_ORDER = ["x86_64", "i386", "riscv64", "aarch64", "mingw", "x86_64-clang",
              "riscv64-clang"]
OPTS = ["O0", "O2"]
COMMON_CFLAGS = ["-w"]  # plus -O<n> and the -ffile-prefix-map flags below
BASES = {"base1": 0x400000, "base2": 0x10000000}
NOPIE_CFLAGS = ["-fno-pie"]


# Debian's gcc-multilib (which provides /usr/include/asm for `gcc -m32`) conflicts
# with the riscv64/aarch64 cross gcc packages, so the i386 build points at the
# same kernel headers itself: <out>/.m32-include/asm -> x86_64-linux-gnu/asm,
# searched last (-idirafter). It changes no code; with gcc-multilib installed
# the system copy is found first.
ASM_HEADERS = "/usr/include/x86_64-linux-gnu/asm"


def cc_cmd(arch, out, lang="c"):
    a = ARCHES[arch]
    cmd = list(a["cxx"] if lang == "c++" else a["cc"])
    if arch == "i386":
        shim = os.path.join(out, ".m32-include")
        link = os.path.join(shim, "asm")
        if not os.path.islink(link) and os.path.isdir(ASM_HEADERS):
            os.makedirs(shim, exist_ok=True)
            os.symlink(ASM_HEADERS, link)
        cmd += ["-idirafter", shim]
    return cmd


def base_ldflags(addr):
    return ["-no-pie", f"-Wl,-Ttext-segment={addr:#x}"]


# ---------------------------------------------------------------- programs
def _bz2(files):
    return [("bzip2-sys", "bzip2-1.0.8/" + f) for f in files]


def programs(srcdirs):
    """Program definitions. `srcs` are (crate, path inside the crate) or
    ("mains", file). Directory globs are expanded here, sorted."""

    def glob(crate, sub, ext=(".c",), skip=()):
        base = os.path.join(srcdirs[crate], sub)
        return [(crate, f"{sub}/{f}") for f in sorted(os.listdir(base))
                if f.endswith(ext) and f not in skip]

    lzma_dirs = ["common", "lzma", "lz", "check", "delta", "rangecoder", "simple"]
    lzma_srcs = []
    for sub in lzma_dirs:
        lzma_srcs += glob("lzma-sys", f"xz-5.2/src/liblzma/{sub}",
                          skip=("crc32_small.c", "crc64_small.c", "crc32_tablegen.c",
                                "crc64_tablegen.c", "fastpos_tablegen.c", "price_tablegen.c"))
    lzma_srcs += [("lzma-sys", "xz-5.2/src/common/tuklib_cpucores.c"),
                  ("lzma-sys", "xz-5.2/src/common/tuklib_physmem.c")]

    zstd_srcs = []
    for sub in ["common", "compress", "decompress", "dictBuilder"]:
        zstd_srcs += glob("zstd-sys", f"zstd/lib/{sub}")

    P = {}
    P["zlib"] = dict(
        srcs=[("libz-sys", f"src/zlib/{f}") for f in
              ["adler32.c", "compress.c", "crc32.c", "deflate.c", "infback.c", "inffast.c",
               "inflate.c", "inftrees.c", "trees.c", "uncompr.c", "zutil.c", "gzclose.c",
               "gzlib.c", "gzread.c", "gzwrite.c"]] + [("mains", "zlib.c")],
        incs=[("libz-sys", "src/zlib")],
        defs=["STDC", "_LARGEFILE64_SOURCE", "HAVE_UNISTD_H", "HAVE_STDARG_H"],
        defs_pe=["STDC", "HAVE_UNISTD_H", "HAVE_STDARG_H"], libs=[], size="small")
    P["lz4"] = dict(
        srcs=[("lz4-sys", f"liblz4/lib/{f}") for f in ["lz4.c", "lz4frame.c", "lz4hc.c", "xxhash.c"]]
        + [("mains", "lz4.c")],
        incs=[("lz4-sys", "liblz4/lib")], defs=[], libs=[], size="small")
    P["bzip2"] = dict(
        # upstream bzip2 command-line program (bzip2.c has the main), as its Makefile builds it
        srcs=_bz2(["blocksort.c", "huffman.c", "crctable.c", "randtable.c", "compress.c",
                   "decompress.c", "bzlib.c", "bzip2.c"]),
        incs=[("bzip2-sys", "bzip2-1.0.8")], defs=["_FILE_OFFSET_BITS=64"], libs=[], size="small")
    P["xz"] = dict(
        srcs=lzma_srcs + [("mains", "xz.c")],
        incs=[("lzma-sys", f"xz-5.2/src/liblzma/{d}") for d in ["api"] + lzma_dirs]
        + [("lzma-sys", "xz-5.2/src/common"), ("lzma-sys", ".")],  # "." has lzma-sys' config.h
        defs=["HAVE_CONFIG_H=1"], cflags=["-std=c99", "-pthread"], ldflags=["-pthread"],
        libs=[], size="medium")
    P["pcre2"] = dict(
        srcs=glob("pcre2-sys", "upstream/src",
                  skip=("pcre2_jit_match.c", "pcre2_jit_misc.c", "pcre2_ucptables.c"))
        + [("mains", "pcre2.c")],
        incs=[("pcre2-sys", "upstream/src"), ("pcre2-sys", "upstream/deps"),
              ("pcre2-sys", "upstream/include")],
        defs=["PCRE2_CODE_UNIT_WIDTH=8", "HAVE_STDLIB_H=1", "HAVE_MEMMOVE=1", "HAVE_CONFIG_H=1",
              "PCRE2_STATIC=1", "STDC_HEADERS=1", "SUPPORT_PCRE2_8=1", "SUPPORT_UNICODE=1",
              "SUPPORT_JIT=1"],
        defs_pe_extra=["HAVE_WINDOWS_H=1"], libs=[], size="medium")
    P["zstd"] = dict(
        srcs=zstd_srcs + [("zstd-sys", "zstd/lib/decompress/huf_decompress_amd64.S"),
                          ("mains", "zstd.c")],
        incs=[("zstd-sys", "zstd/lib"), ("zstd-sys", "zstd/lib/common")],
        defs=["XXH_NAMESPACE=ZSTD_"], defs_pe_extra=["ZSTD_DISABLE_ASM"], libs=[], size="large")
    P["sqlite3"] = dict(
        srcs=[("libsqlite3-sys", "sqlite3/sqlite3.c"), ("mains", "sqlite3.c")],
        incs=[("libsqlite3-sys", "sqlite3")],
        # the set libsqlite3-sys 0.40 uses for its `bundled` feature
        defs=["SQLITE_CORE", "SQLITE_DEFAULT_FOREIGN_KEYS=1", "SQLITE_ENABLE_API_ARMOR",
              "SQLITE_ENABLE_COLUMN_METADATA", "SQLITE_ENABLE_DBSTAT_VTAB", "SQLITE_ENABLE_FTS3",
              "SQLITE_ENABLE_FTS3_PARENTHESIS", "SQLITE_ENABLE_FTS5", "SQLITE_ENABLE_JSON1",
              "SQLITE_ENABLE_LOAD_EXTENSION=1", "SQLITE_ENABLE_RTREE", "SQLITE_ENABLE_STAT4",
              "SQLITE_SOUNDEX", "SQLITE_THREADSAFE=1", "SQLITE_USE_URI", "HAVE_USLEEP=1",
              "HAVE_ISNAN", "_POSIX_THREAD_SAFE_FUNCTIONS"],
        libs=["-lm"], libs_elf_extra=[], size="huge")
    # Lua 5.4: the core and standard libraries with the defines lua-src's
    # build uses, and our driver (lua-src ships no lua.c). lvm.c dispatches
    # opcodes through a table of label addresses (ljumptab.h) with GCC and
    # clang: the computed-goto interpreter loop.
    lua_dir = "lua-5.4.9"
    P["lua"] = dict(
        srcs=glob("lua-src", lua_dir) + [("mains", "lua.c")],
        incs=[("lua-src", lua_dir)],
        defs=["LUA_USE_LINUX", "LUA_COMPAT_5_3"],
        defs_pe=["LUA_USE_WINDOWS", "LUA_COMPAT_5_3"], libs=["-lm"], size="small")
    # LevelDB 1.22 (C++11): the library as its CMakeLists builds it (no
    # tests, benchmarks or tools), the in-memory Env, and our driver.
    ldb = "deps/leveldb-1.22"
    ldb_srcs = []
    for sub in ["db", "table", "util"]:
        ldb_srcs += glob("leveldb-sys", f"{ldb}/{sub}", ext=(".cc",),
                         skip=("db_bench.cc", "leveldbutil.cc", "testharness.cc", "testutil.cc",
                               "env_posix.cc", "env_windows.cc"))
    ldb_srcs = [s for s in ldb_srcs if not s[1].endswith("_test.cc")]
    P["leveldb"] = dict(
        srcs=ldb_srcs + [("leveldb-sys", f"{ldb}/helpers/memenv/memenv.cc"),
                         ("mains", "leveldb.cc")],
        srcs_elf=[("leveldb-sys", f"{ldb}/util/env_posix.cc")],
        srcs_pe=[("leveldb-sys", f"{ldb}/util/env_windows.cc")],
        incs=[("leveldb-sys", ldb), ("leveldb-sys", f"{ldb}/include")],
        defs=["LEVELDB_PLATFORM_POSIX=1", "LEVELDB_IS_BIG_ENDIAN=0", "LEVELDB_HAS_PORT_CONFIG_H=0",
              "HAVE_FDATASYNC=1", "LEVELDB_COMPILE_LIBRARY"],
        defs_pe=["LEVELDB_PLATFORM_WINDOWS=1", "LEVELDB_IS_BIG_ENDIAN=0",
                 "LEVELDB_HAS_PORT_CONFIG_H=0", "LEVELDB_COMPILE_LIBRARY", "_UNICODE", "UNICODE"],
        cxxflags=["-std=c++11"], ldflags=["-pthread"], libs=[], size="medium")
    # Ours: local functions named like libc's noreturn functions that return
    # (see the file).
    P["errnames"] = dict(srcs=[("mains", "errnames.c")], incs=[], defs=[], libs=[], size="small")
    return P


# Which programs are built for which arch (every one at -O0 and -O2). The
# matrix keeps a clean full build near 5 minutes on 2 idle cores (~610 s of
# compiler CPU; see README):
# * sqlite3 (9.5 MB of C; one -O2 compile is ~50 s CPU) only for x86_64 gcc;
# * zstd (zstd_lazy.c alone ~20 s CPU at -O2) only for x86_64 and aarch64;
# * pcre2 (~30 s CPU per arch) not for i386;
# * xz not for mingw: every liblzma file includes <windows.h> there, which
#   costs ~0.5 s per compile (~75 s in all).
PROGRAM_ORDER = ["bzip2", "zlib", "lz4", "xz", "pcre2", "zstd", "sqlite3", "lua", "leveldb",
                 "errnames"]
QUICK_PROGRAMS = ["bzip2", "zlib"]
PROGRAM_ARCHES = {
    "x86_64": PROGRAM_ORDER,
    "i386": ["bzip2", "zlib", "lz4", "xz", "lua", "errnames"],
    "riscv64": ["bzip2", "zlib", "lz4", "xz", "pcre2", "lua", "leveldb", "errnames"],
    "aarch64": ["bzip2", "zlib", "lz4", "xz", "pcre2", "zstd", "lua", "leveldb", "errnames"],
    "mingw": ["bzip2", "zlib", "lz4", "pcre2", "lua", "leveldb", "errnames"],
    "x86_64-clang": ["bzip2", "zlib", "lz4", "xz", "pcre2", "lua", "leveldb", "errnames"],
    "riscv64-clang": ["bzip2", "zlib", "lz4", "xz", "lua", "leveldb", "errnames"],
}
# Optimisation levels beyond -O0/-O2, per program (every arch that builds it):
# -O3 (unrolled, vectorised, more inlining and tail merging) and -Os (tail
# calls everywhere, shared epilogues).
EXTRA_OPTS = {"lua": ["O3", "Os"], "zlib": ["O3", "Os"]}
# Statically linked against glibc (non-PIE, libc.a): what a Keystone enclave
# application usually is. -O2 only.
STATIC_PROGRAMS = {"riscv64": ["bzip2", "lua"], "riscv64-clang": ["lua"]}
# Load-address variants (non-PIE code, linked at two bases) for these programs
# only: a -fno-pie compile of the large ones would double their cost.
BASE_PROGRAMS = ["bzip2", "zlib", "lz4"]

# One-source-line change for build-to-build diffs (applied to a copy of the file).
# `after` locates the function; the first line containing `old` after it is changed.
CHANGE = dict(program="bzip2", crate="bzip2-sys", path="bzip2-1.0.8/bzlib.c",
              after="int BZ_API(BZ2_bzBuffToBuffCompress)",
              old="if (workFactor == 0) workFactor = 30;",
              new="if (workFactor == 0) workFactor = 31;", opt="O2")


# ---------------------------------------------------------------- helpers
sha256 = binfmt.sha256


def run(cmd, cwd=None, cpu=None):
    """Run cmd; raise with its output on failure. If `cpu` is a list, append
    the CPU seconds (user+sys) the command and its children used."""
    with tempfile.TemporaryFile() as log:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=ENV)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    if cpu is not None:
        cpu.append(ru.ru_utime + ru.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{out[-4000:]}")
    return out


# Fixed environment: C locale, no SOURCE_DATE_EPOCH surprises, no ccache.
ENV = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
# SOURCE_DATE_EPOCH: mingw strip stamps the PE header with the time otherwise.
ENV.update(LC_ALL="C", LANG="C", TZ="UTC", SOURCE_DATE_EPOCH="0")


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Builder:
    def __init__(self, args, srcdirs, crate_versions):
        self.args = args
        self.out = os.path.abspath(args.out)
        self.srcdirs = srcdirs
        self.crate_versions = crate_versions
        self.progs = programs(srcdirs)
        self.lock = threading.Lock()
        self.done = 0
        self.total = 0
        self.t0 = time.monotonic()
        self.versions = {}
        self.times = []  # (wall s, cpu s, object) of compiles actually run

    # ------------------------------------------------------------ paths
    def src_path(self, crate, rel):
        if crate == "mains":
            return os.path.join(MAINS, rel)
        return os.path.join(self.srcdirs[crate], rel)

    def prefix_maps(self, prog):
        """Map every source root to a short fixed name so no absolute path of
        this machine (cargo home, checkout, output dir) reaches the binaries.
        The patched copy maps to the same name as its original."""
        maps = [f"-ffile-prefix-map={MAINS}=corpus/mains"]
        crates = {c for c, _ in self.progs[prog]["srcs"] + self.progs[prog]["incs"]} - {"mains"}
        for crate in sorted(crates):
            d = self.srcdirs[crate]
            name = f"{crate}-{self.crate_versions[crate]}"
            maps.append(f"-ffile-prefix-map={d}={name}")
            if crate == CHANGE["crate"]:
                maps.append(f"-ffile-prefix-map={self.patched_root(crate)}={name}")
        return maps

    def patched_root(self, crate):
        return os.path.join(self.out, "src-changed", crate)

    def lang(self, prog):
        """"c++" when the program has C++ sources (compiled and linked with
        the C++ driver), else "c"."""
        return "c++" if any(r.endswith(".cc") for _, r in self.progs[prog]["srcs"]) else "c"

    def cflags(self, arch, prog, opt, nopie, lang=None):
        a, p = ARCHES[arch], self.progs[prog]
        lang = lang or self.lang(prog)
        fl = (cc_cmd(arch, self.out, lang) + [f"-{opt}"] + COMMON_CFLAGS
              + (NOPIE_CFLAGS if nopie else []))
        fl += p.get("cxxflags" if lang == "c++" else "cflags", [])
        defs = p.get("defs_pe", p["defs"]) if a["fmt"] == "pe" else p["defs"]
        if a["fmt"] == "pe":
            defs = defs + p.get("defs_pe_extra", [])
        fl += [f"-D{d}" for d in defs]
        fl += [f"-I{self.src_path(c, r)}" for c, r in p["incs"]]
        fl += self.prefix_maps(prog)
        return fl

    def prog_srcs(self, arch, prog):
        srcs = []
        p = self.progs[prog]
        for c, r in p["srcs"] + p.get("srcs_pe" if ARCHES[arch]["fmt"] == "pe" else "srcs_elf", []):
            if r.endswith(".S") and not (ARCHES[arch]["fmt"] == "elf" and arch.startswith("x86_64")):
                continue  # zstd's x86-64 asm: ELF x86_64 only (as zstd-sys does)
            srcs.append((c, r))
        return srcs

    # ------------------------------------------------------------ compile
    def obj_path(self, arch, prog, opt, mode, crate, rel):
        flat = rel.replace("/", "__")
        return os.path.join(self.out, "obj", arch, f"{prog}-{opt}-{mode}", crate, flat + ".o")

    def compile(self, arch, prog, opt, mode, crate, rel, src):
        obj = self.obj_path(arch, prog, opt, mode, crate, rel)
        lang = "c++" if src.endswith(".cc") else "c"
        cmd = self.cflags(arch, prog, opt, mode == "nopie", lang) + ["-c", src, "-o", obj]
        stamp = obj + ".cmd"
        key = "\n".join(cmd)
        if (os.path.exists(obj) and os.path.exists(stamp)
                and os.path.getmtime(obj) >= os.path.getmtime(src)):
            with open(stamp) as f:
                if f.read() == key:
                    return obj
        os.makedirs(os.path.dirname(obj), exist_ok=True)
        t, cpu = time.monotonic(), []
        run(cmd, cwd=os.path.dirname(src), cpu=cpu)
        with self.lock:
            self.times.append((time.monotonic() - t, cpu[0], os.path.relpath(obj, self.out)))
        with open(stamp, "w") as f:
            f.write(key)
        return obj

    # ------------------------------------------------------------ link/strip/truth
    def link(self, arch, prog, opt, objs, out, extra_ldflags):
        a, p = ARCHES[arch], self.progs[prog]
        lang = self.lang(prog)
        cmd = (cc_cmd(arch, self.out, lang) + a.get("ldflags", [])
               + (a.get("cxx_ldflags", []) if lang == "c++" else [])
               + p.get("ldflags", []) + extra_ldflags + objs + p["libs"] + ["-o", out])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + ".tmp" + a.get("exe", "")
        run(cmd[:-1] + [tmp])
        os.replace(tmp, out)
        stripped = self.stripped_name(out, arch)
        tmp = stripped + ".tmp"
        run([a["strip"], "--strip-all", "-o", tmp, out])
        os.replace(tmp, stripped)
        return stripped

    def stripped_name(self, out, arch):
        exe = ARCHES[arch].get("exe", "")
        if exe and out.endswith(exe):
            return out[: -len(exe)] + ".stripped" + exe
        return out + ".stripped"

    def rel(self, path):
        return os.path.relpath(path, self.out)

    def truth(self, arch, binary, stripped):
        img = binfmt.load(binary)
        if not img.has_symtab or not img.functions:
            raise RuntimeError(f"{binary}: no function symbols")
        t = {
            "binary": self.rel(binary),
            "stripped": self.rel(stripped),
            "arch": img.machine,
            "format": img.format,
            "bits": img.bits,
            "pie": img.pie,
            "entry": img.entry,
        }
        if img.format == "pe":
            t["image_base"] = img.image_base
        t["exec_sections"] = [{"name": s["name"], "addr": s["addr"], "size": s["size"]}
                              for s in img.exec_sections()]
        t["functions"] = img.functions
        if img.other_code_symbols:
            t["other_code_symbols"] = img.other_code_symbols
        path = binary[: -len(ARCHES[arch].get("exe", "")) or None] + ".truth.json"
        write_if_changed(path, dump_truth(t))
        return path, img

    # ------------------------------------------------------------ plan
    def plan(self, arches):
        """Returns (compile jobs, link targets)."""
        progs = QUICK_PROGRAMS if self.args.quick else PROGRAM_ORDER
        compiles = {}  # obj -> (arch, prog, opt, mode, crate, rel, src, cost)
        targets = []
        for arch in arches:
            for prog in progs:
                if prog not in PROGRAM_ARCHES[arch]:
                    continue
                opts = OPTS + ([] if self.args.quick else EXTRA_OPTS.get(prog, []))
                for opt in opts:
                    modes = ["pie"]
                    variants = [("default", "pie", [])]
                    if (opt == "O2" and not self.args.quick
                            and prog in STATIC_PROGRAMS.get(arch, [])):
                        variants.append(("static", "pie", ["-static"]))
                    if (ARCHES[arch]["bases"] and opt == "O2" and not self.args.quick
                            and prog in BASE_PROGRAMS):
                        modes.append("nopie")
                        for name, addr in BASES.items():
                            variants.append((name, "nopie", base_ldflags(addr)))
                    for mode in modes:
                        for crate, rel in self.prog_srcs(arch, prog):
                            src = self.src_path(crate, rel)
                            obj = self.obj_path(arch, prog, opt, mode, crate, rel)
                            # C++ pulls in far more header text per byte of source.
                            cost = (os.path.getsize(src) * (1 if opt == "O0" else 3)
                                    * (4 if src.endswith(".cc") else 1))
                            compiles[obj] = (arch, prog, opt, mode, crate, rel, src, cost)
                    for vname, mode, ldf in variants:
                        objs = [self.obj_path(arch, prog, opt, mode, c, r)
                                for c, r in self.prog_srcs(arch, prog)]
                        targets.append(dict(arch=arch, prog=prog, opt=opt, variant=vname,
                                            mode=mode, ldflags=ldf, objs=objs,
                                            base=BASES.get(vname)))
                    if prog == CHANGE["program"] and opt == CHANGE["opt"]:
                        psrc = os.path.join(self.patched_root(CHANGE["crate"]), CHANGE["path"])
                        pobj = self.obj_path(arch, prog, opt, "changed", CHANGE["crate"],
                                             CHANGE["path"])
                        compiles[pobj] = (arch, prog, opt, "changed", CHANGE["crate"],
                                          CHANGE["path"], psrc,
                                          3 * os.path.getsize(self.src_path(CHANGE["crate"],
                                                                            CHANGE["path"])))
                        objs = []
                        for c, r in self.prog_srcs(arch, prog):
                            if (c, r) == (CHANGE["crate"], CHANGE["path"]):
                                objs.append(pobj)
                            else:
                                objs.append(self.obj_path(arch, prog, opt, "pie", c, r))
                        targets.append(dict(arch=arch, prog=prog, opt=opt, variant="changed",
                                            mode="pie", ldflags=[], objs=objs, base=None))
        return compiles, targets

    def make_patched_source(self):
        """Copy the file of CHANGE and change exactly one line in it."""
        orig = self.src_path(CHANGE["crate"], CHANGE["path"])
        dst = os.path.join(self.patched_root(CHANGE["crate"]), CHANGE["path"])
        with open(orig) as f:
            lines = f.read().split("\n")
        starts = [i for i, l in enumerate(lines) if CHANGE["after"] in l]
        if len(starts) != 1:
            raise RuntimeError(f"patch anchor found {len(starts)} times in {orig}")
        hits = [i for i in range(starts[0], len(lines)) if CHANGE["old"] in lines[i]]
        if not hits:
            raise RuntimeError(f"patch line not found in {orig}")
        i = hits[0]
        lines[i] = lines[i].replace(CHANGE["old"], CHANGE["new"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        write_if_changed(dst, "\n".join(lines))
        # headers next to the original are found via -I of the original dir, but a
        # quoted #include looks in the file's own dir first: link them in.
        for f in os.listdir(os.path.dirname(orig)):
            if f.endswith(".h"):
                link = os.path.join(os.path.dirname(dst), f)
                if not os.path.exists(link):
                    shutil.copyfile(os.path.join(os.path.dirname(orig), f), link)
        return dict(file=f"{CHANGE['crate']}-{self.crate_versions[CHANGE['crate']]}/{CHANGE['path']}",
                    line=i + 1, old=CHANGE["old"], new=CHANGE["new"])

    def progress(self, what):
        with self.lock:
            self.done += 1
            if self.args.verbose:
                print(f"  [{self.done}/{self.total} {time.monotonic() - self.t0:6.1f}s] {what}",
                      flush=True)

    def build(self, arches):
        compiles, targets = self.plan(arches)
        patch = self.make_patched_source() if any(t["variant"] == "changed" for t in targets) else None
        jobs = self.args.jobs
        # longest first (sqlite3.c at -O2 dominates), so the tail stays short
        order = sorted(compiles.items(), key=lambda kv: (-kv[1][7], kv[0]))
        self.total = len(order)
        print(f"compiling {len(order)} objects with {jobs} jobs ...", flush=True)
        t = time.monotonic()
        with cf.ThreadPoolExecutor(jobs) as ex:
            futs = {ex.submit(self.compile, *v[:7]): k for k, v in order}
            try:
                for fu in cf.as_completed(futs):
                    fu.result()
                    self.progress(os.path.relpath(futs[fu], self.out))
            except BaseException:
                ex.shutdown(wait=True, cancel_futures=True)
                raise
        print(f"  compile: {time.monotonic() - t:.1f}s wall; {len(self.times)} compiler runs used "
              f"{sum(c for _, c, _ in self.times):.1f}s CPU", flush=True)
        # timing log (not part of the corpus; varies run to run): wall s, CPU s, object
        if self.times:
            with open(os.path.join(self.out, ".compile-times.tsv"), "w") as f:
                for wall, cpu, obj in sorted(self.times, key=lambda x: (-x[1], x[2])):
                    f.write(f"{wall:.2f}\t{cpu:.2f}\t{obj}\n")

        t = time.monotonic()
        self.done, self.total = 0, len(targets)
        results = []

        def do_target(tg):
            a = ARCHES[tg["arch"]]
            name = f"{tg['prog']}-{tg['opt']}"
            if tg["variant"] != "default":
                name += f"-{tg['variant']}"
            out = os.path.join(self.out, tg["arch"], name + a.get("exe", ""))
            stripped = self.link(tg["arch"], tg["prog"], tg["opt"], tg["objs"], out, tg["ldflags"])
            tpath, img = self.truth(tg["arch"], out, stripped)
            self.progress(self.rel(out))
            return tg, out, stripped, tpath, img

        with cf.ThreadPoolExecutor(jobs) as ex:
            try:
                for r in ex.map(do_target, targets):
                    results.append(r)
            except BaseException:
                ex.shutdown(wait=True, cancel_futures=True)
                raise
        print(f"  link+strip+truth: {time.monotonic() - t:.1f}s", flush=True)
        self.write_manifest(arches, results, patch)

    # ------------------------------------------------------------ manifest
    def compiler_version(self, arch):
        if arch not in self.versions:
            self.versions[arch] = run(ARCHES[arch]["cc"] + ["--version"]).split("\n")[0].strip()
        return self.versions[arch]

    def write_manifest(self, arches, results, patch):
        by_key = {}
        for tg, out, stripped, tpath, img in results:
            by_key[(tg["arch"], tg["prog"], tg["opt"], tg["variant"])] = (out, img)
        entries = []
        for tg, out, stripped, tpath, img in results:
            a = ARCHES[tg["arch"]]
            text = img.section_size(".text")
            e = dict(
                id=f"{tg['arch']}/{os.path.basename(out)}",
                arch=tg["arch"], machine=img.machine, format=img.format, bits=img.bits,
                program=tg["prog"], opt=tg["opt"], compiler=a["compiler"],
                compiler_version=self.compiler_version(tg["arch"]),
                pie=img.pie, variant=tg["variant"],
                unstripped=self.rel(out), stripped=self.rel(stripped), truth=self.rel(tpath),
                sha256=dict(unstripped=sha256(out), stripped=sha256(stripped)),
                file_size=dict(unstripped=os.path.getsize(out), stripped=os.path.getsize(stripped)),
                text_size=text,
                exec_size=sum(s["size"] for s in img.exec_sections()),
                functions=len(img.functions),
                cflags=self.public_flags(self.cflags(tg["arch"], tg["prog"], tg["opt"],
                                                     tg["mode"] == "nopie")),
                ldflags=a.get("ldflags", []) + self.progs[tg["prog"]].get("ldflags", [])
                + tg["ldflags"] + self.progs[tg["prog"]]["libs"],
            )
            if tg["variant"] in BASES:
                other = "base2" if tg["variant"] == "base1" else "base1"
                e["base_address"] = tg["base"]
                e["same_code_as"] = f"{tg['arch']}/{tg['prog']}-{tg['opt']}-{other}" + a.get("exe", "")
            if tg["variant"] == "changed":
                orig_out, orig_img = by_key[(tg["arch"], tg["prog"], tg["opt"], "default")]
                e["changed_from"] = self.rel(orig_out)
                e["patch"] = patch
                e.update(diff_functions(orig_img, img))
            entries.append(e)
        vorder = ["default", "base1", "base2", "changed", "static"]
        entries.sort(key=lambda e: (ARCH_ORDER.index(e["arch"]), PROGRAM_ORDER.index(e["program"]),
                                    e["opt"], vorder.index(e["variant"])))
        m = dict(
            schema=1,
            generated_by="corpus/build.sh",
            quick=bool(self.args.quick),
            arches=arches,
            sources=[dict(crate=c, version=self.crate_versions[c],
                          path=f"{c}-{self.crate_versions[c]}") for c in sorted(self.srcdirs)],
            common_cflags=COMMON_CFLAGS + ["-ffile-prefix-map=<source root>=<crate>-<version>"],
            binaries=entries,
        )
        write_if_changed(os.path.join(self.out, "manifest.json"), json.dumps(m, indent=1) + "\n")
        self.summary(entries)

    def public_flags(self, flags):
        """Flags with machine-specific absolute paths replaced by fixed names."""
        out = []
        for f in flags:
            if f.startswith("-ffile-prefix-map="):
                continue
            for crate, d in self.srcdirs.items():
                f = f.replace(d, f"{crate}-{self.crate_versions[crate]}")
            f = f.replace(MAINS, "corpus/mains")
            f = f.replace(os.path.join(self.out, ".m32-include"), "<asm-header-shim>")
            out.append(f)
        return out + ["-ffile-prefix-map=<source root>=<crate>-<version>"]

    def summary(self, entries):
        print(f"{'binary':42} {'.text':>9} {'funcs':>6} {'stripped':>9}")
        for e in entries:
            print(f"{e['id']:42} {e['text_size']:9d} {e['functions']:6d} "
                  f"{e['file_size']['stripped']:9d}")
        print(f"{len(entries)} binaries; manifest: {os.path.join(self.out, 'manifest.json')}")


def dump_truth(t):
    """JSON with one function (and one section) per line: small and diffable."""
    head = {k: v for k, v in t.items() if k not in ("exec_sections", "functions")}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f" {json.dumps(k)}: {json.dumps(v)},")
    for key in ("exec_sections", "functions"):
        items = [" " + json.dumps(x, separators=(", ", ": ")) for x in t[key]]
        lines.append(f' "{key}": [')
        lines.append(",\n".join(" " + i for i in items))
        lines.append(" ]," if key == "exec_sections" else " ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def diff_functions(a, b):
    """Compare two unstripped builds function by function (by symbol name)."""
    fa = {f["name"]: f for f in a.functions}
    fb = {f["name"]: f for f in b.functions}
    changed, moved, resized = [], 0, []
    for name in sorted(set(fa) & set(fb)):
        x, y = fa[name], fb[name]
        if x["size"] != y["size"]:
            resized.append(name)
        if x["addr"] != y["addr"]:
            moved += 1
        if a.read(x["addr"], x["size"]) != b.read(y["addr"], y["size"]):
            changed.append(name)
    return dict(
        changed_functions=changed,
        resized_functions=resized,
        added_functions=sorted(set(fb) - set(fa)),
        removed_functions=sorted(set(fa) - set(fb)),
        moved_functions=moved,
    )


def probe(arch, out):
    """Is the toolchain there and can it link a hello world? -> (ok, reason)."""
    a = ARCHES[arch]
    for tool in (a["cc"][0], a["strip"]):
        if shutil.which(tool) is None:
            return False, f"{tool} not found (apt-get install {a['apt']})"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            # errno.h pulls in the kernel's asm/ headers (missing for -m32 without
            # gcc-multilib); math/pthread check the libraries the programs link.
            f.write("#include <errno.h>\n#include <math.h>\n#include <pthread.h>\n"
                    "#include <stdio.h>\nint main(int c, char **v){(void)v;\n"
                    "printf(\"%d %f\\n\", errno, sqrt((double)c));return 0;}\n")
        p = subprocess.run(cc_cmd(arch, out) + [src, "-o", os.path.join(d, "t"), "-lm"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=ENV)
        if p.returncode != 0:
            msg = p.stdout.decode("utf-8", "replace").strip().split("\n")[-1]
            return False, f"{' '.join(a['cc'])} cannot link a C program ({msg}; apt-get install {a['apt']})"
    if "leveldb" in PROGRAM_ARCHES[arch]:  # the C++ program
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "t.cc")
            with open(src, "w") as f:
                f.write("#include <mutex>\n#include <string>\n#include <cstdio>\n"
                        "std::mutex m;\nint main(int c, char **v){std::lock_guard<std::mutex> g(m);\n"
                        "std::string s(v[0]); std::printf(\"%zu\\n\", s.size() + c); return 0;}\n")
            p = subprocess.run(cc_cmd(arch, out, "c++") + a.get("cxx_ldflags", [])
                               + [src, "-o", os.path.join(d, "t")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=ENV)
            if p.returncode != 0:
                msg = p.stdout.decode("utf-8", "replace").strip().split("\n")[-1]
                return False, (f"{' '.join(a['cxx'])} cannot link a C++ program ({msg}; "
                               f"apt-get install {a['apt']})")
    return True, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metadata", required=True, help="cargo metadata JSON")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    with open(args.metadata) as f:
        meta = json.load(f)
    wanted = {"bzip2-sys", "libz-sys", "lz4-sys", "lzma-sys", "pcre2-sys", "zstd-sys", "lua-src",
              "leveldb-sys",
              "libsqlite3-sys"}
    srcdirs, versions = {}, {}
    for p in meta["packages"]:
        if p["name"] in wanted:
            srcdirs[p["name"]] = os.path.dirname(p["manifest_path"])
            versions[p["name"]] = p["version"]
    missing = wanted - set(srcdirs)
    if missing:
        sys.exit(f"cargo metadata lacks {sorted(missing)}")

    explicit = bool(args.arch)
    req = [a.strip() for a in args.arch.split(",") if a.strip()] if explicit else list(ARCH_ORDER)
    for a in req:
        if a not in ARCHES:
            sys.exit(f"unknown arch {a!r}; known: {', '.join(ARCH_ORDER)}")
    arches = []
    for a in req:
        ok, why = probe(a, os.path.abspath(args.out))
        if ok:
            arches.append(a)
        elif explicit:
            sys.exit(f"error: --arch {a} requested but {why}")
        else:
            print(f"SKIPPED {a}: {why}", flush=True)
    if not arches:
        sys.exit("no architecture can be built")
    print(f"architectures: {', '.join(arches)}{' (quick)' if args.quick else ''}", flush=True)
    Builder(args, srcdirs, versions).build(arches)


if __name__ == "__main__":
    main()
