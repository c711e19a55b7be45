//! Opening a dump for `talos introspect`, `talos digest` and `talos
//! migrate`, whatever captured it: an ELF core file (kernel, gcore, talos
//! snapshot), a CRIU image directory (`criu dump -D DIR`), or a live
//! process (`--pid PID`, or `pid:N` where a path is expected).
//!
//! The three borrow differently (a mapped core, mapped image files plus the
//! regions CRIU restores from files, owned bytes read from a process), so
//! [`with_dump`] hands the [`Dump`] to a closure instead of returning it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use talos_introspect::criu;
use talos_introspect::dump::Dump;
use talos_introspect::resolve::Resolver;

use crate::input::{self, Input};

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A core file or an image directory.
    Path(PathBuf),
    /// A live process.
    Pid(u32),
}

impl Spec {
    /// `pid:N` is a live process; anything else a path.
    #[must_use]
    pub fn parse(p: &Path) -> Spec {
        match p
            .to_str()
            .and_then(|s| s.strip_prefix("pid:"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(pid) => Spec::Pid(pid),
            None => Spec::Path(p.to_path_buf()),
        }
    }

    /// How outputs name it.
    #[must_use]
    pub fn shown(&self) -> String {
        match self {
            Spec::Path(p) => p.display().to_string(),
            Spec::Pid(pid) => format!("pid:{pid}"),
        }
    }
}

/// The mapped `*.img` files of a CRIU image directory.
pub struct ImageDir {
    files: Vec<(String, Input)>,
}

impl ImageDir {
    /// Map every `*.img` file of `dir` (CRIU's names: lowercase letters,
    /// digits, `-`, `_`, `.`).
    ///
    /// # Errors
    /// When the directory cannot be listed, holds no `inventory.img`, holds
    /// more than `criu::MAX_FILES` images, or a file cannot be mapped.
    pub fn open(dir: &Path) -> Result<ImageDir> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot list the directory", dir.display()))?
        {
            let e = e.with_context(|| format!("{}: cannot list the directory", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if criu::is_image_name(&name) {
                names.push(name);
                if names.len() > criu::MAX_FILES {
                    bail!(
                        "{}: more than {} image files",
                        dir.display(),
                        criu::MAX_FILES
                    );
                }
            }
        }
        names.sort();
        if !names.iter().any(|n| n == "inventory.img") {
            bail!(
                "{}: not a CRIU image directory (no inventory.img)",
                dir.display()
            );
        }
        let mut files = Vec::with_capacity(names.len());
        for n in names {
            let bytes = input::map(&dir.join(&n))?;
            files.push((n, bytes));
        }
        Ok(ImageDir { files })
    }

    /// File name to bytes, for `criu::read`.
    #[must_use]
    pub fn map(&self) -> BTreeMap<String, &[u8]> {
        self.files
            .iter()
            .map(|(n, b)| (n.clone(), &b[..]))
            .collect()
    }

    /// The files, sorted by name.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(n, b)| (n.as_str(), &b[..]))
    }
}

/// A dump, opened.
pub struct View<'d> {
    /// The dump.
    pub dump: &'d Dump<'d>,
    /// How to name it.
    pub shown: String,
    /// The threads' rseq areas when the input records them exactly (a CRIU
    /// image), and how many threads have none.
    pub rseq: Option<(Vec<u64>, usize)>,
    maps: Vec<&'d memmap2::Mmap>,
}

impl View<'_> {
    /// Fault `slice` in with one `madvise(MADV_POPULATE_READ)` when it lies
    /// in a mapped input file (Linux 5.14+); a failure only costs speed.
    pub fn prefetch(&self, slice: &[u8]) {
        for m in &self.maps {
            if input::populate(m, slice) {
                return;
            }
        }
    }
}

/// Open `spec` and run `f` on it. `resolver` supplies the files a CRIU
/// image maps (pages it does not hold come from them).
///
/// # Errors
/// Unreadable or malformed input, a process that cannot be read, and
/// whatever `f` returns.
pub fn with_dump<R>(
    spec: &Spec,
    resolver: &Resolver,
    f: impl FnOnce(&View<'_>) -> Result<R>,
) -> Result<R> {
    let shown = spec.shown();
    match spec {
        Spec::Pid(pid) => {
            let dump =
                talos_introspect::live::read(*pid, &talos_introspect::live::Options::default())
                    .with_context(|| format!("process {pid}: cannot read"))?;
            f(&View {
                dump: &dump,
                shown,
                rseq: None,
                maps: Vec::new(),
            })
        }
        Spec::Path(p) if p.is_dir() => {
            let dir = ImageDir::open(p)?;
            let map = dir.map();
            let set = criu::read(&map).with_context(|| format!("{shown}: cannot read"))?;
            let mat = set
                .materialize(None, resolver)
                .with_context(|| format!("{shown}: cannot lay out"))?;
            let dump = mat.dump();
            // No prefetch of image pages: a directory CRIU or the migration
            // stream has just written is dirty page cache, which
            // `MADV_POPULATE_READ` reads slower than plain faults do
            // (`talos digest` of a received 1 GiB directory: 0.84x of
            // b3sum's speed with it, 0.93x without; BENCHMARKS.md).
            f(&View {
                dump: &dump,
                shown,
                rseq: Some((mat.rseq_areas.clone(), mat.threads_without_rseq)),
                maps: Vec::new(),
            })
        }
        Spec::Path(p) => {
            let bytes = input::map(p)?;
            if !talos_introspect::core::is_core(&bytes) {
                bail!("{shown}: not an ELF core file nor a CRIU image directory");
            }
            let dump = talos_introspect::core::parse(&bytes)
                .with_context(|| format!("{shown}: cannot read core"))?;
            let maps = match &bytes {
                Input::Mapped(m, _) => vec![m],
                Input::Owned(_) => Vec::new(),
            };
            f(&View {
                dump: &dump,
                shown,
                rseq: None,
                maps,
            })
        }
    }
}
