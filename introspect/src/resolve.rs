//! Finding the file a mapping came from: the path recorded in the dump, the
//! same path under a `--sysroot` (dumps taken on another machine), or a file
//! the user names with `--binary` (matched by build-id, else by file name).
//!
//! The library does not map files itself: the caller passes a loader (the
//! `talos` binary memory-maps; tests read).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of a file, shared.
pub type FileBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A function that reads a whole file.
pub type Loader = dyn Fn(&Path) -> std::io::Result<FileBytes> + Send + Sync;

/// What [`Resolver::resolve`] found.
pub enum Resolved {
    /// The file, with the name to show for it.
    File {
        /// Path actually read.
        shown: String,
        /// Its bytes.
        bytes: FileBytes,
    },
    /// The mapped file was deleted and nothing replaces it.
    Deleted,
    /// No file to compare against.
    NotFound {
        /// What was tried, for the message.
        tried: String,
    },
    /// The file exists but cannot be read.
    Unreadable {
        /// The path.
        path: String,
        /// The error.
        error: String,
    },
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolved::File { shown, bytes } => f
                .debug_struct("File")
                .field("shown", shown)
                .field("len", &(**bytes).as_ref().len())
                .finish(),
            Resolved::Deleted => f.write_str("Deleted"),
            Resolved::NotFound { tried } => {
                f.debug_struct("NotFound").field("tried", tried).finish()
            }
            Resolved::Unreadable { path, error } => f
                .debug_struct("Unreadable")
                .field("path", path)
                .field("error", error)
                .finish(),
        }
    }
}

/// A binary the user named with `--binary`.
pub struct Override {
    /// Its path.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: FileBytes,
    /// Its build-id, if it has one.
    pub build_id: Option<Vec<u8>>,
}

/// Finds module files.
pub struct Resolver {
    sysroot: Option<PathBuf>,
    overrides: Vec<Override>,
    loader: Box<Loader>,
    host_vdso: Option<Vec<u8>>,
    saved_vdso: Option<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("sysroot", &self.sysroot)
            .field(
                "overrides",
                &self.overrides.iter().map(|o| &o.path).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Read a whole file with `std::fs::read`.
///
/// # Errors
/// When the file cannot be read.
pub fn read_loader(path: &Path) -> std::io::Result<FileBytes> {
    let v = std::fs::read(path)?;
    Ok(Arc::new(v))
}

impl Resolver {
    /// A resolver that reads files with `loader`.
    #[must_use]
    pub fn new(loader: Box<Loader>) -> Self {
        Resolver {
            sysroot: None,
            overrides: Vec::new(),
            loader,
            host_vdso: None,
            saved_vdso: None,
        }
    }

    /// A resolver that reads files with [`read_loader`].
    #[must_use]
    pub fn with_std_fs() -> Self {
        Resolver::new(Box::new(read_loader))
    }

    /// Look paths up under `dir` instead of `/`.
    #[must_use]
    pub fn sysroot(mut self, dir: Option<PathBuf>) -> Self {
        self.sysroot = dir;
        self
    }

    /// The vDSO of the machine talos runs on (see
    /// [`crate::source::live::host_vdso`]): a dump's `[vdso]` with the same build-id
    /// is compared with it byte for byte.
    #[must_use]
    pub fn host_vdso(mut self, bytes: Option<Vec<u8>>) -> Self {
        self.host_vdso = bytes;
        self
    }

    /// The host vDSO, if set.
    #[must_use]
    pub fn host_vdso_bytes(&self) -> Option<&[u8]> {
        self.host_vdso.as_deref()
    }

    /// A vDSO saved on the host the dump was taken on (`talos snapshot`
    /// writes one next to the core; `--vdso FILE`), shown as `name`: a
    /// dump's `[vdso]` with its build-id is compared with it byte for byte.
    #[must_use]
    pub fn saved_vdso(mut self, vdso: Option<(String, Vec<u8>)>) -> Self {
        self.saved_vdso = vdso;
        self
    }

    /// The reference vDSOs, in the order they are tried: the saved one
    /// (`--vdso FILE`), then this host's. Each with the words that name it.
    #[must_use]
    pub fn vdso_references(&self) -> Vec<(String, &[u8])> {
        let mut out: Vec<(String, &[u8])> = Vec::new();
        if let Some((name, bytes)) = &self.saved_vdso {
            out.push((format!("the saved vDSO {name}"), bytes.as_slice()));
        }
        if let Some(h) = &self.host_vdso {
            out.push(("this host's vDSO".to_string(), h.as_slice()));
        }
        out
    }

    /// Add a `--binary` file.
    ///
    /// # Errors
    /// When it cannot be read.
    pub fn add_binary(&mut self, path: &Path) -> std::io::Result<()> {
        let bytes = (self.loader)(path)?;
        let build_id = talos_cfg::load((*bytes).as_ref())
            .ok()
            .and_then(|i| i.build_id);
        self.overrides.push(Override {
            path: path.to_path_buf(),
            bytes,
            build_id,
        });
        Ok(())
    }

    /// The `--binary` files.
    #[must_use]
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    /// The file for a mapping of `dump_path` whose in-memory build-id is
    /// `build_id`.
    #[must_use]
    pub fn resolve(&self, dump_path: &str, build_id: Option<&[u8]>) -> Resolved {
        let clean = dump_path.strip_suffix(" (deleted)").unwrap_or(dump_path);
        let deleted = clean.len() != dump_path.len();
        if let Some(bid) = build_id
            && let Some(o) = self
                .overrides
                .iter()
                .find(|o| o.build_id.as_deref() == Some(bid))
        {
            return Resolved::File {
                shown: o.path.display().to_string(),
                bytes: Arc::clone(&o.bytes),
            };
        }
        let name = Path::new(clean).file_name();
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| name.is_some() && o.path.file_name() == name)
        {
            return Resolved::File {
                shown: o.path.display().to_string(),
                bytes: Arc::clone(&o.bytes),
            };
        }
        if deleted && self.sysroot.is_none() {
            return Resolved::Deleted;
        }
        let path = match &self.sysroot {
            Some(root) => root.join(clean.trim_start_matches('/')),
            None => PathBuf::from(clean),
        };
        match (self.loader)(&path) {
            Ok(bytes) => Resolved::File {
                shown: path.display().to_string(),
                bytes,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if deleted {
                    Resolved::Deleted
                } else {
                    Resolved::NotFound {
                        tried: path.display().to_string(),
                    }
                }
            }
            Err(e) => Resolved::Unreadable {
                path: path.display().to_string(),
                error: e.to_string(),
            },
        }
    }
}
