//! A CRIU image directory as one stream (`talos.images/1`), bounded and
//! checked as it arrives.
//!
//! ```text
//! magic    "TALOSIMG"            8 bytes
//! version  u8 = 1
//! file     u8 = 1, u16 BE name length (1-255), name, u64 BE length, bytes
//! ...      (every file other than pages-*.img first, in name order;
//!           then the pages-*.img files, in name order)
//! end      u8 = 0, u32 BE number of files
//! ```
//!
//! The receiver ([`Unpacker`]) checks each part the moment it arrives:
//! the magic and version; each name is a CRIU image name (`*.img`, no
//! path), new, and within [`MAX_FILES`]; each length fits what is left of
//! the size limit; an image other than pages starts with CRIU's magic
//! words; every pagemap is parsed as soon as it is complete, and a
//! `pages-N.img` must then announce exactly the bytes its pagemaps name
//! (pages after the pagemaps is what lets this be checked before one page
//! is written); at the end, the file count and every announced pages file.
//! A stream cut short is an error at [`Unpacker::finish`]. Files are
//! written into a fresh directory and nothing in it is trusted until the
//! state has been measured.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use talos_introspect::criu::{self, image};

use crate::error::{Error, Result};

/// The stream's magic.
pub const MAGIC: &[u8; 8] = b"TALOSIMG";
/// The stream's format version.
pub const VERSION: u8 = 1;
/// Most files in one stream.
pub const MAX_FILES: usize = 4096;
/// Largest image other than pages (they are parsed in memory): 256 MiB.
pub const MAX_METADATA_FILE: u64 = 256 << 20;

fn is_pages(name: &str) -> bool {
    name.starts_with("pages-")
}

/// The files of an image directory in stream order: every image other
/// than pages in name order, then the pages images in name order.
#[must_use]
pub fn stream_order<'a>(files: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let mut v: Vec<(&str, &[u8])> = files.to_vec();
    v.sort_by(|a, b| (is_pages(a.0), a.0).cmp(&(is_pages(b.0), b.0)));
    v
}

/// The whole stream of `files` as a reader, and its length.
pub struct Packer<'a> {
    parts: Vec<Part<'a>>,
    index: usize,
    offset: usize,
    len: u64,
}

enum Part<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl Part<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Owned(v) => v,
            Part::Borrowed(b) => b,
        }
    }
}

impl<'a> Packer<'a> {
    /// The stream of `files` (names and bytes).
    ///
    /// # Errors
    /// [`Error::Archive`] for a name that is not a CRIU image name, or more
    /// than [`MAX_FILES`] files.
    pub fn new(files: &[(&'a str, &'a [u8])]) -> Result<Packer<'a>> {
        if files.len() > MAX_FILES {
            return Err(Error::Archive(format!(
                "{} files, more than {MAX_FILES}",
                files.len()
            )));
        }
        let mut parts = Vec::with_capacity(files.len() * 2 + 2);
        let mut head = MAGIC.to_vec();
        head.push(VERSION);
        parts.push(Part::Owned(head));
        for (name, bytes) in stream_order(files) {
            if !criu::is_image_name(name) {
                return Err(Error::Archive(format!("{name:?} is not a CRIU image name")));
            }
            let mut h = vec![1u8];
            h.extend_from_slice(&(name.len() as u16).to_be_bytes());
            h.extend_from_slice(name.as_bytes());
            h.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            parts.push(Part::Owned(h));
            parts.push(Part::Borrowed(bytes));
        }
        let mut end = vec![0u8];
        end.extend_from_slice(&(files.len() as u32).to_be_bytes());
        parts.push(Part::Owned(end));
        let len = parts.iter().map(|p| p.bytes().len() as u64).sum();
        Ok(Packer {
            parts,
            index: 0,
            offset: 0,
            len,
        })
    }

    /// Length of the whole stream.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the stream is empty (never: it has a header).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for Packer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(p) = self.parts.get(self.index) {
            let rest = p.bytes().get(self.offset..).unwrap_or(&[]);
            if rest.is_empty() {
                self.index += 1;
                self.offset = 0;
                continue;
            }
            let n = rest.len().min(buf.len());
            if let (Some(d), Some(s)) = (buf.get_mut(..n), rest.get(..n)) {
                d.copy_from_slice(s);
            }
            self.offset += n;
            return Ok(n);
        }
        Ok(0)
    }
}

impl crate::exchange::Chunks for Packer<'_> {
    /// The same pieces as [`Read::read`] gives with a buffer of
    /// `buf.len()`, borrowed from the files instead of copied.
    fn next_chunk<'b>(&'b mut self, buf: &'b mut [u8]) -> std::io::Result<&'b [u8]> {
        while let Some(p) = self.parts.get(self.index) {
            let left = p.bytes().len().saturating_sub(self.offset);
            if left == 0 {
                self.index += 1;
                self.offset = 0;
                continue;
            }
            let (start, n) = (self.offset, left.min(buf.len()));
            self.offset += n;
            let p = self.parts.get(self.index);
            return Ok(p
                .and_then(|p| p.bytes().get(start..start + n))
                .unwrap_or(&[]));
        }
        Ok(&[])
    }
}

/// Where the unpacker is in the stream.
enum At {
    Header,
    Tag,
    Name {
        len: usize,
    },
    NameLen,
    Length {
        name: String,
    },
    Body {
        name: String,
        left: u64,
        checked: bool,
    },
    Count,
    Done,
}

/// Where an unpacked stream's files go.
pub trait Sink {
    /// Start file `name` (a CRIU image name, new in this stream).
    ///
    /// # Errors
    /// When it cannot be created.
    fn create(&mut self, name: &str) -> Result<()>;
    /// Append to the file started last.
    ///
    /// # Errors
    /// When it cannot be written.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// The file started last is complete.
    ///
    /// # Errors
    /// When it cannot be flushed.
    fn close(&mut self) -> Result<()>;
}

/// Files written into a fresh directory (mode 0700).
pub struct DirSink {
    dir: PathBuf,
    open: Option<(String, std::io::BufWriter<std::fs::File>)>,
}

impl DirSink {
    /// A sink into `dir`, which must not exist yet.
    ///
    /// # Errors
    /// When `dir` exists or cannot be created.
    pub fn new(dir: &Path) -> Result<DirSink> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir.display().to_string(), "creating the image directory", e))?;
        Ok(DirSink {
            dir: dir.to_path_buf(),
            open: None,
        })
    }
}

impl Sink for DirSink {
    fn create(&mut self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), "creating", e))?;
        self.open = Some((
            name.to_string(),
            std::io::BufWriter::with_capacity(1 << 20, f),
        ));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.open {
            Some((n, w)) => w
                .write_all(bytes)
                .map_err(|e| Error::io(n.clone(), "writing", e)),
            None => Err(Error::Archive("internal: no open file".into())),
        }
    }

    fn close(&mut self) -> Result<()> {
        if let Some((n, w)) = self.open.take() {
            // Not fsynced: nothing trusts these bytes before they are
            // measured, and a launch checks the restored process against
            // the verified digests, so a file torn by a crash is a refusal,
            // never a wrong state.
            w.into_inner()
                .map_err(|e| Error::io(n.clone(), "writing", e.into_error()))?;
        }
        Ok(())
    }
}

/// Files kept in memory (tests, fuzzing, small tools).
#[derive(Debug, Default)]
pub struct MemSink {
    /// The files, in stream order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Sink for MemSink {
    fn create(&mut self, name: &str) -> Result<()> {
        self.files.push((name.to_string(), Vec::new()));
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self.files.last_mut() {
            Some((_, v)) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(Error::Archive("internal: no open file".into())),
        }
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A file being written.
struct Open {
    /// Kept in memory too when it must be parsed (pagemaps).
    keep: Option<Vec<u8>>,
    /// First bytes, for the magic check.
    head: Vec<u8>,
}

/// Receives an image stream into a [`Sink`], checking it as it arrives.
pub struct Unpacker<S: Sink = DirSink> {
    sink: S,
    max_total: u64,
    at: At,
    pending: Vec<u8>,
    names: BTreeSet<String>,
    written: u64,
    /// Bytes each pages image must hold, from the pagemaps received.
    expect_pages: BTreeMap<String, u64>,
    pages_seen: BTreeSet<String>,
    open: Option<Open>,
}

impl Unpacker<DirSink> {
    /// Unpack into `dir`, which must not exist yet (it is created mode
    /// 0700); at most `max_total` bytes of files.
    ///
    /// # Errors
    /// When `dir` exists or cannot be created.
    pub fn new(dir: &Path, max_total: u64) -> Result<Unpacker<DirSink>> {
        Ok(Unpacker::with_sink(DirSink::new(dir)?, max_total))
    }

    /// The directory written.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.sink.dir
    }

    /// The stream ended: check it was complete.
    ///
    /// # Errors
    /// As [`Unpacker::finish_sink`].
    pub fn finish(self) -> Result<PathBuf> {
        Ok(self.finish_sink()?.dir)
    }
}

impl<S: Sink> Unpacker<S> {
    /// Unpack into `sink`; at most `max_total` bytes of files.
    pub fn with_sink(sink: S, max_total: u64) -> Unpacker<S> {
        Unpacker {
            sink,
            max_total,
            at: At::Header,
            pending: Vec::new(),
            names: BTreeSet::new(),
            written: 0,
            expect_pages: BTreeMap::new(),
            pages_seen: BTreeSet::new(),
            open: None,
        }
    }

    /// Bytes of files written so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Take `n` bytes from `data` into `pending`; true when `pending` holds
    /// `n` bytes.
    fn fill(&mut self, data: &mut &[u8], n: usize) -> bool {
        let need = n.saturating_sub(self.pending.len());
        let take = need.min(data.len());
        let (a, b) = data.split_at(take);
        self.pending.extend_from_slice(a);
        *data = b;
        self.pending.len() >= n
    }

    /// Feed the next bytes of the stream.
    ///
    /// # Errors
    /// [`Error::Archive`] naming the first thing that breaks the format or
    /// a limit; I/O errors writing the files.
    pub fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match std::mem::replace(&mut self.at, At::Done) {
                At::Header => {
                    if !self.fill(&mut data, 9) {
                        self.at = At::Header;
                        continue;
                    }
                    if self.pending.get(..8) != Some(&MAGIC[..]) {
                        return Err(Error::Archive(
                            "not a talos image stream (bad magic)".into(),
                        ));
                    }
                    if self.pending.get(8) != Some(&VERSION) {
                        return Err(Error::Archive(format!(
                            "stream version {:?}, this talos reads {VERSION}",
                            self.pending.get(8)
                        )));
                    }
                    self.pending.clear();
                    self.at = At::Tag;
                }
                At::Tag => {
                    // The loop runs only while `data` holds a byte.
                    let Some((&tag, rest)) = data.split_first() else {
                        self.at = At::Tag;
                        continue;
                    };
                    data = rest;
                    self.at = match tag {
                        1 => At::NameLen,
                        0 => At::Count,
                        t => return Err(Error::Archive(format!("unknown entry tag {t}"))),
                    };
                }
                At::NameLen => {
                    if !self.fill(&mut data, 2) {
                        self.at = At::NameLen;
                        continue;
                    }
                    // `fill` returned true: both bytes are there.
                    let Some(&[hi, lo]) = self.pending.get(..2) else {
                        return Err(Error::Archive("file name length cut short".into()));
                    };
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    self.pending.clear();
                    if len == 0 || len > 255 {
                        return Err(Error::Archive(format!("file name of {len} bytes")));
                    }
                    self.at = At::Name { len };
                }
                At::Name { len } => {
                    if !self.fill(&mut data, len) {
                        self.at = At::Name { len };
                        continue;
                    }
                    let name = String::from_utf8(std::mem::take(&mut self.pending))
                        .map_err(|_| Error::Archive("file name is not UTF-8".into()))?;
                    if !criu::is_image_name(&name) {
                        return Err(Error::Archive(format!("{name:?} is not a CRIU image name")));
                    }
                    if self.names.len() >= MAX_FILES {
                        return Err(Error::Archive(format!("more than {MAX_FILES} files")));
                    }
                    if !self.names.insert(name.clone()) {
                        return Err(Error::Archive(format!("{name} sent twice")));
                    }
                    if !is_pages(&name) && !self.pages_seen.is_empty() {
                        return Err(Error::Archive(format!(
                            "{name} after the pages images (pages come last)"
                        )));
                    }
                    self.at = At::Length { name };
                }
                At::Length { name } => {
                    if !self.fill(&mut data, 8) {
                        self.at = At::Length { name };
                        continue;
                    }
                    let mut b = [0u8; 8];
                    b.copy_from_slice(self.pending.get(..8).unwrap_or(&[0; 8]));
                    self.pending.clear();
                    let len = u64::from_be_bytes(b);
                    if self.written.saturating_add(len) > self.max_total {
                        return Err(Error::Archive(format!(
                            "{name}: {len} bytes would pass the limit of {} bytes",
                            self.max_total
                        )));
                    }
                    if is_pages(&name) {
                        match self.expect_pages.get(&name) {
                            Some(&want) if want == len => {}
                            Some(&want) => {
                                return Err(Error::Archive(format!(
                                    "{name} announces {len} bytes, its pagemaps name {want}"
                                )));
                            }
                            None => {
                                return Err(Error::Archive(format!(
                                    "{name}: no pagemap received before it names it"
                                )));
                            }
                        }
                        self.pages_seen.insert(name.clone());
                    } else if len > MAX_METADATA_FILE {
                        return Err(Error::Archive(format!(
                            "{name}: {len} bytes, more than {MAX_METADATA_FILE} for an image other than pages"
                        )));
                    } else if len < 4 {
                        return Err(Error::Archive(format!("{name}: {len} bytes, not an image")));
                    }
                    self.sink.create(&name)?;
                    self.open = Some(Open {
                        keep: name.starts_with("pagemap-").then(Vec::new),
                        head: Vec::new(),
                    });
                    self.at = At::Body {
                        checked: is_pages(&name),
                        name,
                        left: len,
                    };
                    if len == 0 {
                        self.close_file()?;
                    }
                }
                At::Body {
                    name,
                    left,
                    mut checked,
                } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    data = rest;
                    let Some(open) = self.open.as_mut() else {
                        return Err(Error::Archive("internal: no open file".into()));
                    };
                    if !checked {
                        let take = (8 - open.head.len().min(8)).min(chunk.len());
                        open.head
                            .extend_from_slice(chunk.get(..take).unwrap_or(&[]));
                        let need = if name == "inventory.img" { 4 } else { 8 };
                        if open.head.len() >= need || left == n as u64 {
                            check_magic(&name, &open.head)?;
                            checked = true;
                        }
                    }
                    self.sink.write(chunk)?;
                    if let Some(k) = open.keep.as_mut() {
                        k.extend_from_slice(chunk);
                    }
                    self.written = self.written.saturating_add(n as u64);
                    let left = left - n as u64;
                    if left == 0 {
                        self.at = At::Body {
                            name,
                            left,
                            checked,
                        };
                        self.close_file()?;
                    } else {
                        self.at = At::Body {
                            name,
                            left,
                            checked,
                        };
                    }
                }
                At::Count => {
                    if !self.fill(&mut data, 4) {
                        self.at = At::Count;
                        continue;
                    }
                    let mut b = [0u8; 4];
                    b.copy_from_slice(self.pending.get(..4).unwrap_or(&[0; 4]));
                    self.pending.clear();
                    let count = u32::from_be_bytes(b) as usize;
                    if count != self.names.len() {
                        return Err(Error::Archive(format!(
                            "the end announces {count} files, {} were sent",
                            self.names.len()
                        )));
                    }
                    self.at = At::Done;
                }
                At::Done => {
                    return Err(Error::Archive(format!(
                        "{} bytes after the end of the stream",
                        data.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The current file is complete: flush it, and parse it if it is a
    /// pagemap.
    fn close_file(&mut self) -> Result<()> {
        let At::Body { name, .. } = std::mem::replace(&mut self.at, At::Tag) else {
            return Ok(());
        };
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        if !is_pages(&name) && open.head.len() < if name == "inventory.img" { 4 } else { 8 } {
            check_magic(&name, &open.head)?;
        }
        self.sink.close()?;
        if let Some(bytes) = open.keep {
            let (pages_name, bytes_named) = pagemap_pages(&name, &bytes)?;
            if self.pages_seen.contains(&pages_name) {
                return Err(Error::Archive(format!(
                    "{name} names {pages_name}, which was already received"
                )));
            }
            let e = self.expect_pages.entry(pages_name).or_insert(0);
            *e = e.saturating_add(bytes_named);
        }
        Ok(())
    }

    /// The stream ended: check it was complete; returns the sink.
    ///
    /// # Errors
    /// [`Error::Archive`] for a stream cut short, or pages images its
    /// pagemaps name but that never came.
    pub fn finish_sink(self) -> Result<S> {
        if !matches!(self.at, At::Done) {
            return Err(Error::Archive(format!(
                "the stream ends early ({} bytes of files received)",
                self.written
            )));
        }
        for (name, &want) in &self.expect_pages {
            if want > 0 && !self.pages_seen.contains(name) {
                return Err(Error::Archive(format!(
                    "{name} ({want} bytes) is named by a pagemap but was not sent"
                )));
            }
        }
        if !self.names.contains("inventory.img") {
            return Err(Error::Archive("no inventory.img".into()));
        }
        Ok(self.sink)
    }
}

fn check_magic(name: &str, head: &[u8]) -> Result<()> {
    let word = |i: usize| {
        head.get(i..i + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
    };
    let ok = if name == "inventory.img" {
        word(0) == Some(image::INVENTORY_MAGIC)
    } else {
        word(0) == Some(image::IMG_COMMON_MAGIC) && word(4).is_some()
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Archive(format!(
            "{name} does not start with CRIU's image magic"
        )))
    }
}

/// The pages image a pagemap names and the bytes its entries hold.
fn pagemap_pages(name: &str, bytes: &[u8]) -> Result<(String, u64)> {
    let img = image::Image { name, bytes };
    let bad = |e: talos_introspect::Error| Error::Archive(format!("{name}: {e}"));
    let entries = image::entries(img, image::PAGEMAP_MAGIC).map_err(bad)?;
    let (head, rest) = entries
        .split_first()
        .ok_or_else(|| Error::Archive(format!("{name}: no pagemap_head")))?;
    let head: criu::proto::PagemapHead = image::decode(img, 0, head).map_err(bad)?;
    let id = head
        .pages_id
        .ok_or_else(|| Error::Archive(format!("{name}: no pages_id")))?;
    let mut total = 0u64;
    for (i, e) in rest.iter().enumerate() {
        let e: criu::proto::PagemapEntry = image::decode(img, i + 1, e).map_err(bad)?;
        // CRIU 4.x: field 5; older images: field 2. Neither is no count
        // at all, not zero pages.
        let n = e
            .nr_pages
            .or(e.compat_nr_pages.map(u64::from))
            .ok_or_else(|| Error::Archive(format!("{name}: entry {} has no page count", i + 1)))?;
        let flags = e.flags.unwrap_or(criu::pe::PRESENT);
        if flags & criu::pe::PRESENT != 0 {
            total = n
                .checked_mul(criu::PAGE)
                .and_then(|b| total.checked_add(b))
                .ok_or_else(|| Error::Archive(format!("{name}: page count overflows")))?;
        }
    }
    Ok((format!("pages-{id}.img"), total))
}

/// A whole stream held in memory, checked like one that arrives: its
/// files in stream order.
///
/// # Errors
/// As [`Unpacker::push`] and [`Unpacker::finish_sink`].
pub fn split(bytes: &[u8], max_total: u64) -> Result<Vec<(String, Vec<u8>)>> {
    let mut u = Unpacker::with_sink(MemSink::default(), max_total);
    u.push(bytes)?;
    Ok(u.finish_sink()?.files)
}
