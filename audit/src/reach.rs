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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use talos_cfg::image::SymbolSource;
use talos_cfg::{Cfg, EdgeKind, Image};

/// Why a root is a root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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

/// The result: reachable blocks, and for each reachable function the root
/// and the function it was first reached from.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Reachable `(function index, block index)` pairs.
    pub blocks: BTreeSet<(usize, usize)>,
    /// For each reached function index: the root label and the parent
    /// function index (None for the root itself).
    pub functions: BTreeMap<usize, (String, Option<usize>)>,
    /// Number of distinct roots found in the graph.
    pub roots: usize,
}

impl Reach {
    /// Whether block `b` of function `f` is reachable.
    #[must_use]
    pub fn block(&self, f: usize, b: usize) -> bool {
        self.blocks.contains(&(f, b))
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
            cur = self.functions.get(&i).and_then(|(_, p)| *p);
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

/// Compute reachability from the roots. `address_taken` are code addresses
/// found in instructions (the caller's scan); relocation targets come from
/// the image.
#[must_use]
pub fn reach(
    image: &Image<'_>,
    cfg: &Cfg,
    exports: &[(String, u64)],
    address_taken: &BTreeSet<u64>,
) -> Reach {
    // Block starts -> (function, block), first function wins.
    let mut at: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut entry_of: BTreeMap<u64, usize> = BTreeMap::new();
    let entry_block: Vec<usize> = cfg
        .functions
        .iter()
        .map(|f| {
            f.blocks
                .binary_search_by_key(&f.addr, |b| b.addr)
                .unwrap_or(0)
        })
        .collect();
    let eb = |fi: usize| entry_block.get(fi).copied().unwrap_or(0);
    for (fi, f) in cfg.functions.iter().enumerate() {
        entry_of.entry(f.addr).or_insert(fi);
        for (bi, b) in f.blocks.iter().enumerate() {
            at.entry(b.addr).or_insert((fi, bi));
        }
    }
    let mut roots: Vec<(usize, String)> = Vec::new();
    let add_root = |addr: u64, label: String, roots: &mut Vec<(usize, String)>| {
        if let Some(&fi) = entry_of.get(&addr)
            && !roots.iter().any(|(r, _)| *r == fi)
        {
            roots.push((fi, label));
        }
    };
    if let Some(e) = image.entry {
        let name = cfg
            .function_at(e)
            .map(talos_cfg::Function::display_name)
            .unwrap_or_default();
        add_root(e, format!("entry {name}"), &mut roots);
    }
    for s in &image.symbols {
        if s.source == SymbolSource::Dynsym && s.global {
            add_root(s.addr, format!("export {}", s.name), &mut roots);
        }
    }
    for (name, addr) in exports {
        add_root(*addr, format!("export {name}"), &mut roots);
    }
    for &a in &image.init_fini {
        let name = cfg
            .function_at(a)
            .map(talos_cfg::Function::display_name)
            .unwrap_or_default();
        add_root(a, format!("init/fini {name}"), &mut roots);
    }
    let taken: BTreeSet<u64> = image
        .code_pointers
        .iter()
        .copied()
        .chain(address_taken.iter().copied())
        .collect();
    for a in taken {
        let name = cfg
            .function_at(a)
            .map(talos_cfg::Function::display_name)
            .unwrap_or_default();
        add_root(a, format!("address taken {name}"), &mut roots);
    }

    let mut r = Reach {
        roots: roots.len(),
        ..Reach::default()
    };
    for (root, label) in roots {
        if r.functions.contains_key(&root) {
            continue;
        }
        r.functions.insert(root, (label.clone(), None));
        let mut queue: VecDeque<(usize, usize)> = VecDeque::new();
        queue.push_back((root, eb(root)));
        while let Some((fi, bi)) = queue.pop_front() {
            if !r.blocks.insert((fi, bi)) {
                continue;
            }
            let Some(b) = cfg.functions.get(fi).and_then(|f| f.blocks.get(bi)) else {
                continue;
            };
            for e in &b.succs {
                let Some(t) = e.addr else { continue };
                let next = match e.kind {
                    EdgeKind::Call | EdgeKind::TailCall => entry_of.get(&t).map(|&g| (g, eb(g))),
                    _ => cfg
                        .functions
                        .get(fi)
                        .and_then(|f| f.blocks.binary_search_by_key(&t, |x| x.addr).ok())
                        .map(|j| (fi, j))
                        .or_else(|| at.get(&t).copied()),
                };
                let Some((g, j)) = next else { continue };
                if g != fi && !r.functions.contains_key(&g) {
                    r.functions.insert(g, (label.clone(), Some(fi)));
                }
                if !r.blocks.contains(&(g, j)) {
                    queue.push_back((g, j));
                }
            }
        }
    }
    r
}
