//! Which code can run: blocks reachable from the roots an enclave or
//! program offers, with the root that reaches each function and a call
//! path to it.
//!
//! Roots, in this order (a function reached from several roots is credited
//! to the first): the entry point; exported functions (global `.dynsym`
//! symbols, e.g. the SGX SDK's `enclave_entry`); init/fini functions; and
//! address-taken functions (code addresses in relocations or computed by
//! instructions anywhere in the image, which over-approximates the targets
//! of indirect calls).
//!
//! Edges followed: every intra-function edge, direct calls and tail calls
//! (to the callee's entry), jump-table targets, and jumps into other
//! functions (cold parts). Indirect calls and jumps talos could not resolve
//! reach only what the address-taken roots cover.
//!
//! The walk is a breadth-first search over `(function, block)` pairs that
//! follows the graph `talos-cfg` recovered as it stands (functions, their
//! blocks, each block's typed successors), with two additions petgraph's
//! `Bfs` would not give: the root and the calling function that first
//! reach each function (the call path a finding shows), and roots that
//! share one visited set but are credited in order. A petgraph copy of the
//! block graph would add a node map and an edge copy for one traversal,
//! and its neighbour order (newest edge first) would have to be undone to
//! keep the paths as they are.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use talos_cfg::image::SymbolSource;
use talos_cfg::{Cfg, EdgeKind, Function, Image};

/// An exported function: a root an enclave or library offers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Export {
    /// Its name.
    pub name: String,
    /// Its address as linked.
    pub addr: u64,
}

/// Why a root is a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RootKind {
    /// The entry point.
    Entry,
    /// An exported symbol.
    Export,
    /// An init/fini function.
    InitFini,
    /// A function whose address is taken.
    AddressTaken,
}

/// A root: why, and the function's name (as a finding's `reached_from`
/// shows it: `entry _start`, `export enclave_entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Why it is a root.
    pub kind: RootKind,
    /// The function's (or the exported symbol's) name.
    pub name: String,
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RootKind::Entry => "entry",
            RootKind::Export => "export",
            RootKind::InitFini => "init/fini",
            RootKind::AddressTaken => "address taken",
        };
        write!(f, "{kind} {}", self.name)
    }
}

/// A block of a function, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockRef {
    /// Function index in the graph.
    pub function: usize,
    /// Block index in that function.
    pub block: usize,
}

/// How a function was first reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// The root that reaches it.
    pub root: Root,
    /// The function it was first reached from (`None` for the root itself).
    pub parent: Option<usize>,
}

/// The result: reachable blocks, and for each reachable function the root
/// and the function it was first reached from.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Reachable blocks.
    pub blocks: BTreeSet<BlockRef>,
    /// How each reached function (by index) was first reached.
    pub functions: BTreeMap<usize, Reached>,
    /// Number of distinct roots found in the graph.
    pub roots: usize,
    /// Functions whose blocks the walk cannot enter, each a sentence: what
    /// their code reaches is unknown.
    pub anomalies: Vec<String>,
}

impl Reach {
    /// Whether block `b` of function `f` is reachable.
    #[must_use]
    pub fn block(&self, f: usize, b: usize) -> bool {
        self.blocks.contains(&BlockRef {
            function: f,
            block: b,
        })
    }

    /// The call path from the root to function `f` (names, root first, at
    /// most 8).
    #[must_use]
    pub fn path(&self, cfg: &Cfg, f: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(f);
        let mut guard = 0;
        while let Some(i) = cur {
            guard += 1;
            if guard > 64 {
                break;
            }
            if let Some(func) = cfg.functions.get(i) {
                out.push(func.display_name());
            }
            cur = self.functions.get(&i).and_then(|r| r.parent);
        }
        out.reverse();
        if out.len() > 8 {
            let tail = out.split_off(out.len() - 7);
            out.truncate(1);
            out.push("...".to_string());
            out.extend(tail);
        }
        out
    }
}

/// A function of the graph with its index.
#[derive(Clone, Copy)]
struct Entry<'a> {
    index: usize,
    function: &'a Function,
    /// The block at its entry address. A function recovered without one
    /// (its entry did not decode) has no block a root or call can start at.
    block: Option<usize>,
}

/// Compute reachability from the roots. `address_taken` are code addresses
/// found in instructions (the caller's scan); relocation targets come from
/// the image.
#[must_use]
pub fn reach(
    image: &Image<'_>,
    cfg: &Cfg,
    exports: &[Export],
    address_taken: &BTreeSet<u64>,
) -> Reach {
    // Block starts -> block, first function wins; entries -> function.
    let mut at: BTreeMap<u64, BlockRef> = BTreeMap::new();
    let mut entry_of: BTreeMap<u64, Entry<'_>> = BTreeMap::new();
    let mut anomalies = Vec::new();
    for (fi, f) in cfg.functions.iter().enumerate() {
        let block = f.blocks.binary_search_by_key(&f.addr, |b| b.addr).ok();
        if block.is_none() && !f.blocks.is_empty() {
            anomalies.push(format!(
                "{}: no recovered block starts at its entry {:#x}, so no call or root enters its {} blocks",
                f.display_name(),
                f.addr,
                f.blocks.len()
            ));
        }
        entry_of.entry(f.addr).or_insert(Entry {
            index: fi,
            function: f,
            block,
        });
        for (bi, b) in f.blocks.iter().enumerate() {
            at.entry(b.addr).or_insert(BlockRef {
                function: fi,
                block: bi,
            });
        }
    }
    let mut roots: Vec<(Entry<'_>, Root)> = Vec::new();
    let mut add_root = |addr: u64, kind: RootKind, name: Option<&str>| {
        if let Some(&e) = entry_of.get(&addr)
            && !roots.iter().any(|(r, _)| r.index == e.index)
        {
            let name = name.map_or_else(|| e.function.display_name(), str::to_string);
            roots.push((e, Root { kind, name }));
        }
    };
    if let Some(e) = image.entry {
        add_root(e, RootKind::Entry, None);
    }
    for s in &image.symbols {
        if s.source == SymbolSource::Dynsym && s.global {
            add_root(s.addr, RootKind::Export, Some(&s.name));
        }
    }
    for x in exports {
        add_root(x.addr, RootKind::Export, Some(&x.name));
    }
    for &a in &image.init_fini {
        add_root(a, RootKind::InitFini, None);
    }
    let taken: BTreeSet<u64> = image
        .code_pointers
        .iter()
        .copied()
        .chain(address_taken.iter().copied())
        .collect();
    for a in taken {
        add_root(a, RootKind::AddressTaken, None);
    }

    let mut r = Reach {
        roots: roots.len(),
        anomalies,
        ..Reach::default()
    };
    for (root, label) in roots {
        if r.functions.contains_key(&root.index) {
            continue;
        }
        r.functions.insert(
            root.index,
            Reached {
                root: label.clone(),
                parent: None,
            },
        );
        let mut queue: VecDeque<BlockRef> = VecDeque::new();
        if let Some(block) = root.block {
            queue.push_back(BlockRef {
                function: root.index,
                block,
            });
        }
        while let Some(here) = queue.pop_front() {
            if !r.blocks.insert(here) {
                continue;
            }
            let Some(b) = cfg
                .functions
                .get(here.function)
                .and_then(|f| f.blocks.get(here.block))
            else {
                continue;
            };
            for e in &b.succs {
                let Some(t) = e.addr else { continue };
                // The function the edge goes to, and its block there (a
                // callee without an entry block is reached, but none of
                // its blocks: an anomaly says so).
                let next: Option<(usize, Option<usize>)> = match e.kind {
                    EdgeKind::Call | EdgeKind::TailCall => {
                        entry_of.get(&t).map(|g| (g.index, g.block))
                    }
                    _ => cfg
                        .functions
                        .get(here.function)
                        .and_then(|f| f.blocks.binary_search_by_key(&t, |x| x.addr).ok())
                        .map(|block| (here.function, Some(block)))
                        .or_else(|| at.get(&t).map(|b| (b.function, Some(b.block)))),
                };
                let Some((function, block)) = next else {
                    continue;
                };
                if function != here.function && !r.functions.contains_key(&function) {
                    r.functions.insert(
                        function,
                        Reached {
                            root: label.clone(),
                            parent: Some(here.function),
                        },
                    );
                }
                if let Some(block) = block {
                    let next = BlockRef { function, block };
                    if !r.blocks.contains(&next) {
                        queue.push_back(next);
                    }
                }
            }
        }
    }
    r
}
