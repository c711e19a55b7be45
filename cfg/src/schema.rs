//! The `talos.cfg/1` JSON document (specified in `docs/schema-cfg.md`).
//!
//! The same structs serialise `talos cfg --format json` and read saved
//! documents back (`talos diff` accepts them in place of binaries).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::model::{
    Anomaly, Block, CapHit, Cfg, Function, FunctionSource, JumpTableInfo, Stats, Unresolved,
};

/// Schema identifier written in every document.
pub const SCHEMA: &str = "talos.cfg/1";

/// Facts about the analysed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryInfo {
    /// Path as given on the command line.
    pub path: String,
    /// `elf` or `pe`.
    pub format: String,
    /// `x86`, `x86_64`, `riscv64`, `aarch64`.
    pub arch: String,
    /// `executable`, `pie_executable` or `shared_object`.
    pub kind: String,
    /// Image base that digests are relative to.
    pub base: u64,
    /// Entry point, if any.
    pub entry: Option<u64>,
    /// Build-id, lowercase hex, if any.
    pub build_id: Option<String>,
    /// BLAKE3 of the whole file, lowercase hex.
    pub blake3: String,
}

/// One function in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionDoc {
    /// Entry address as linked.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Name, if known.
    pub name: Option<String>,
    /// Why talos thinks this is a function.
    pub source: FunctionSource,
    /// Proven never to return.
    pub noreturn: bool,
    /// Function digest.
    pub digest: Digest,
    /// Position-independent digest (see `docs/diff.md`), when the writer
    /// computed it; `talos diff` matches moved functions with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi_digest: Option<Digest>,
    /// Basic blocks.
    pub blocks: Vec<Block>,
}

impl From<&Function> for FunctionDoc {
    fn from(f: &Function) -> Self {
        FunctionDoc {
            addr: f.addr,
            size: f.size,
            name: f.name.clone(),
            source: f.source,
            noreturn: f.noreturn,
            digest: f.digest,
            pi_digest: None,
            blocks: f.blocks.clone(),
        }
    }
}

/// A whole `talos.cfg/1` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CfgDoc {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Version of talos that wrote it.
    pub talos_version: String,
    /// The analysed file.
    pub binary: BinaryInfo,
    /// Digest of the whole graph.
    pub digest: Digest,
    /// Counts.
    pub stats: Stats,
    /// Limits the analysis stopped at (see [`Cfg::caps`]); not empty means
    /// the graph is incomplete. Absent in documents written before caps
    /// were recorded.
    #[serde(default)]
    pub caps: Vec<CapHit>,
    /// Functions sorted by address (all, or the one asked for).
    pub functions: Vec<FunctionDoc>,
    /// Unresolved indirect jumps.
    pub unresolved: Vec<Unresolved>,
    /// Resolved jump tables.
    pub jump_tables: Vec<JumpTableInfo>,
    /// Oddities met on the way.
    pub anomalies: Vec<Anomaly>,
    /// Non-padding executable bytes no function covers.
    pub unexplained_bytes: u64,
}

impl CfgDoc {
    /// Record the position-independent digests `pi` (in the order of
    /// `cfg.functions`, as [`crate::digest::position_independent`] returns
    /// them) in the document's functions.
    pub fn set_pi_digests(&mut self, cfg: &Cfg, pi: &[crate::digest::PiDigest]) {
        let by_addr: std::collections::BTreeMap<u64, Digest> = cfg
            .functions
            .iter()
            .zip(pi)
            .map(|(f, d)| (f.addr, d.function))
            .collect();
        for f in &mut self.functions {
            f.pi_digest = by_addr.get(&f.addr).copied();
        }
    }

    /// The document for `cfg`, with `functions` restricted to `only` when
    /// given. (It copies the graph; [`write_document`] writes the same
    /// document without building it.)
    #[must_use]
    pub fn new(cfg: &Cfg, path: &str, file_blake3: &str, only: Option<&Function>) -> Self {
        let functions = match only {
            Some(f) => vec![FunctionDoc::from(f)],
            None => cfg.functions.iter().map(FunctionDoc::from).collect(),
        };
        CfgDoc {
            schema: SCHEMA.to_string(),
            talos_version: env!("CARGO_PKG_VERSION").to_string(),
            binary: BinaryInfo::new(cfg, path, file_blake3),
            digest: cfg.digest,
            stats: cfg.stats,
            caps: cfg.caps.clone(),
            functions,
            unresolved: cfg.unresolved.clone(),
            jump_tables: cfg.jump_tables.clone(),
            anomalies: cfg.anomalies.clone(),
            unexplained_bytes: cfg.unexplained_bytes,
        }
    }
}

impl BinaryInfo {
    fn new(cfg: &Cfg, path: &str, file_blake3: &str) -> Self {
        let kind = match cfg.kind {
            crate::ImageKind::Executable => "executable",
            crate::ImageKind::PieExecutable => "pie_executable",
            crate::ImageKind::SharedObject => "shared_object",
        };
        BinaryInfo {
            path: path.to_string(),
            format: cfg.format.name().to_string(),
            arch: cfg.arch.name().to_string(),
            kind: kind.to_string(),
            base: cfg.base,
            entry: cfg.entry,
            build_id: cfg.build_id.clone(),
            blake3: file_blake3.to_string(),
        }
    }
}

/// The head of a function in the document: the fields and order of
/// [`FunctionDoc`] without its blocks.
#[derive(Serialize)]
struct FunctionHead<'a> {
    addr: u64,
    size: u64,
    name: &'a Option<String>,
    source: FunctionSource,
    noreturn: bool,
    digest: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pi_digest: Option<Digest>,
}

/// Append the JSON of function `f` (index `i`) to `buf`: the bytes
/// `serde_json` writes for its [`FunctionDoc`]. The head goes through
/// serde; the basic blocks, nearly all of a whole-program document, are
/// written here, with no escaping to do (numbers and fixed names).
fn function_json(
    buf: &mut Vec<u8>,
    pi: Option<&[Digest]>,
    i: usize,
    f: &Function,
) -> std::io::Result<()> {
    let head = FunctionHead {
        addr: f.addr,
        size: f.size,
        name: &f.name,
        source: f.source,
        noreturn: f.noreturn,
        digest: f.digest,
        pi_digest: pi.and_then(|p| p.get(i).copied()),
    };
    serde_json::to_writer(&mut *buf, &head)?;
    // `{...}` becomes `{...,"blocks":[...]}`.
    buf.pop();
    buf.extend_from_slice(b",\"blocks\":[");
    let mut num = itoa::Buffer::new();
    for (k, b) in f.blocks.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"addr\":");
        buf.extend_from_slice(num.format(b.addr).as_bytes());
        buf.extend_from_slice(b",\"size\":");
        buf.extend_from_slice(num.format(b.size).as_bytes());
        buf.extend_from_slice(b",\"instructions\":");
        buf.extend_from_slice(num.format(b.instructions).as_bytes());
        buf.extend_from_slice(b",\"succs\":[");
        for (j, e) in b.succs.iter().enumerate() {
            if j > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"addr\":");
            match e.addr {
                Some(a) => buf.extend_from_slice(num.format(a).as_bytes()),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"kind\":\"");
            buf.extend_from_slice(e.kind.name().as_bytes());
            buf.extend_from_slice(b"\"}");
        }
        buf.extend_from_slice(b"]}");
    }
    buf.extend_from_slice(b"]}");
    Ok(())
}

/// Write the `talos.cfg/1` document of `cfg` to `out` as it goes, without
/// building it in memory (a whole-program graph of a large binary has
/// millions of blocks): the same document as [`CfgDoc::new`] (with
/// [`CfgDoc::set_pi_digests`] when `pi` is given: the position-independent
/// digests in the order of `cfg.functions`). The top-level fields come one
/// per line, and the elements of the long lists (functions, unresolved
/// jumps, jump tables, anomalies) one per line, so that two documents diff
/// line by line. Deterministic: the same graph gives the same bytes.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_document<W: std::io::Write>(
    mut out: W,
    cfg: &Cfg,
    path: &str,
    file_blake3: &str,
    only: Option<&Function>,
    pi: Option<&[Digest]>,
) -> std::io::Result<()> {
    fn field<W: std::io::Write, T: Serialize + ?Sized>(
        out: &mut W,
        key: &str,
        value: &T,
        last: bool,
    ) -> std::io::Result<()> {
        write!(out, "  {}: ", serde_json::to_string(key)?)?;
        serde_json::to_writer(&mut *out, value)?;
        out.write_all(if last { b"\n" } else { b",\n" })
    }
    fn list<W: std::io::Write, T: Serialize>(
        out: &mut W,
        key: &str,
        items: impl Iterator<Item = T>,
        last: bool,
    ) -> std::io::Result<()> {
        write!(out, "  {}: [", serde_json::to_string(key)?)?;
        let mut first = true;
        for item in items {
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            serde_json::to_writer(&mut *out, &item)?;
            first = false;
        }
        if !first {
            out.write_all(b"\n  ")?;
        }
        out.write_all(if last { b"]\n" } else { b"],\n" })
    }
    out.write_all(b"{\n")?;
    field(&mut out, "schema", SCHEMA, false)?;
    field(&mut out, "talos_version", env!("CARGO_PKG_VERSION"), false)?;
    field(
        &mut out,
        "binary",
        &BinaryInfo::new(cfg, path, file_blake3),
        false,
    )?;
    field(&mut out, "digest", &cfg.digest, false)?;
    field(&mut out, "stats", &cfg.stats, false)?;
    field(&mut out, "caps", &cfg.caps, false)?;
    match only {
        Some(f) => {
            let i = cfg
                .functions
                .binary_search_by_key(&f.addr, |g| g.addr)
                .unwrap_or(usize::MAX);
            let mut text = Vec::new();
            function_json(&mut text, pi, i, f)?;
            write!(out, "  {}: [\n    ", serde_json::to_string("functions")?)?;
            out.write_all(&text)?;
            out.write_all(b"\n  ],\n")?;
        }
        None => {
            // A whole-program graph has millions of blocks: the functions
            // are serialised in parallel, a bounded batch at a time, and
            // written in order (the same bytes as one at a time).
            const BATCH: usize = 2048;
            write!(out, "  {}: [", serde_json::to_string("functions")?)?;
            let mut first = true;
            for (b, batch) in cfg.functions.chunks(BATCH).enumerate() {
                let texts: Vec<std::io::Result<Vec<u8>>> = batch
                    .par_iter()
                    .enumerate()
                    .map(|(k, f)| {
                        let i = b.saturating_mul(BATCH).saturating_add(k);
                        let mut buf = Vec::with_capacity(256);
                        function_json(&mut buf, pi, i, f)?;
                        Ok(buf)
                    })
                    .collect();
                for text in texts {
                    out.write_all(if first { b"\n    " } else { b",\n    " })?;
                    out.write_all(&text?)?;
                    first = false;
                }
            }
            if !first {
                out.write_all(b"\n  ")?;
            }
            out.write_all(b"],\n")?;
        }
    }
    list(&mut out, "unresolved", cfg.unresolved.iter(), false)?;
    list(&mut out, "jump_tables", cfg.jump_tables.iter(), false)?;
    list(&mut out, "anomalies", cfg.anomalies.iter(), false)?;
    field(&mut out, "unexplained_bytes", &cfg.unexplained_bytes, true)?;
    out.write_all(b"}\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Edge, EdgeKind};

    fn sample(name: Option<&str>) -> Function {
        let kinds = [
            EdgeKind::Fallthrough,
            EdgeKind::Jump,
            EdgeKind::CondTaken,
            EdgeKind::CondNotTaken,
            EdgeKind::Call,
            EdgeKind::Return,
            EdgeKind::IndirectJump,
            EdgeKind::IndirectCall,
            EdgeKind::TailCall,
            EdgeKind::JumpTable,
        ];
        let blocks = (0u64..4)
            .map(|k| Block {
                addr: 0x1000 + 16 * k,
                size: if k == 3 { u64::MAX } else { 16 },
                instructions: if k == 2 { u32::MAX } else { 3 },
                succs: kinds
                    .iter()
                    .take(usize::try_from(k * 3).unwrap_or(0))
                    .enumerate()
                    .map(|(j, &kind)| Edge {
                        addr: (j % 2 == 0).then_some(0x2000 + j as u64),
                        kind,
                    })
                    .collect(),
            })
            .collect();
        Function {
            addr: 0x1000,
            size: 64,
            name: name.map(str::to_string),
            source: FunctionSource::Symbol,
            noreturn: true,
            digest: Digest([7; 32]),
            blocks,
        }
    }

    /// The hand-written blocks are the bytes serde writes for the same
    /// function, names that need escaping and absent digests included.
    #[test]
    fn function_json_is_serdes() {
        for name in [None, Some("main"), Some("q\"uo\\te\n\u{1}é")] {
            let f = sample(name);
            for pi in [None, Some([Digest([9; 32])])] {
                let pi = pi.as_ref().map(|p| p.as_slice());
                let mut ours = Vec::new();
                function_json(&mut ours, pi, 0, &f).unwrap();
                let mut doc = FunctionDoc::from(&f);
                doc.pi_digest = pi.and_then(|p| p.first().copied());
                let theirs = serde_json::to_vec(&doc).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
            }
        }
        let empty = Function {
            blocks: Vec::new(),
            ..sample(None)
        };
        let mut ours = Vec::new();
        function_json(&mut ours, None, 0, &empty).unwrap();
        assert!(ours.ends_with(b",\"blocks\":[]}"));
    }
}
