//! Comparing one matched pair of functions: their shapes, then block by
//! block (longest common subsequence of block shapes) and edge by edge.

use super::*;

pub(super) fn block_ref(f: &DiffFunction, b: &Block) -> BlockRef {
    BlockRef {
        addr: b.addr,
        offset: b.addr.wrapping_sub(f.addr),
        size: b.size,
        instructions: b.instructions,
    }
}

/// Shape of a block that survives moving it: size, instructions, edge
/// kinds.
pub(super) fn block_shape(b: &Block) -> (u64, u32, Vec<u8>) {
    (
        b.size,
        b.instructions,
        b.succs.iter().map(|e| e.kind.tag()).collect(),
    )
}

/// Longest common subsequence of two key sequences (index pairs).
pub(super) fn lcs<K: PartialEq>(a: &[K], b: &[K]) -> Vec<(usize, usize)> {
    // Bounded: blocks of one function; quadratic memory is capped by
    // falling back to in-order pairing of equal prefixes and suffixes.
    const MAX_CELLS: usize = 4_000_000;
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > MAX_CELLS {
        let mut out = Vec::new();
        let mut i = 0;
        while i < n.min(m) && a.get(i) == b.get(i) {
            out.push((i, i));
            i += 1;
        }
        return out;
    }
    let w = m + 1;
    let mut t = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let v = if a.get(i) == b.get(j) {
                t.get((i + 1) * w + j + 1).copied().unwrap_or(0) + 1
            } else {
                let down = t.get((i + 1) * w + j).copied().unwrap_or(0);
                let right = t.get(i * w + j + 1).copied().unwrap_or(0);
                down.max(right)
            };
            if let Some(c) = t.get_mut(i * w + j) {
                *c = v;
            }
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a.get(i) == b.get(j) {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if t.get((i + 1) * w + j).copied().unwrap_or(0)
            >= t.get(i * w + j + 1).copied().unwrap_or(0)
        {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

pub(super) fn compare(
    old: &DiffSide,
    new: &DiffSide,
    of: &DiffFunction,
    nf: &DiffFunction,
    how: MatchedBy,
) -> FunctionPair {
    let same_offset = of.addr.wrapping_sub(old.base) == nf.addr.wrapping_sub(new.base);
    let name = nf
        .name
        .clone()
        .or_else(|| of.name.clone())
        .unwrap_or_else(|| format!("sub_{:x}", nf.addr));
    let mut pair = FunctionPair {
        name,
        old_addr: of.addr,
        new_addr: nf.addr,
        matched_by: how,
        state: PairState::Unchanged,
        blocks_added: Vec::new(),
        blocks_removed: Vec::new(),
        blocks_changed: Vec::new(),
        edges_added: Vec::new(),
        edges_removed: Vec::new(),
        note: None,
    };
    let code_same = match (of.pi, nf.pi) {
        (Some(a), Some(b)) => Some(a == b),
        _ if same_offset => Some(of.digest == nf.digest),
        _ => None,
    };
    pair.state = match code_same {
        Some(true) if same_offset => PairState::Unchanged,
        Some(true) => PairState::Moved,
        Some(false) => PairState::Changed,
        None => PairState::Unproven,
    };
    if pair.state == PairState::Unchanged || pair.state == PairState::Moved {
        return pair;
    }
    block_diff(old, new, of, nf, &mut pair);
    if pair.state == PairState::Unproven
        && (!pair.blocks_added.is_empty()
            || !pair.blocks_removed.is_empty()
            || !pair.edges_added.is_empty()
            || !pair.edges_removed.is_empty())
    {
        pair.state = PairState::Changed;
    }
    if pair.state == PairState::Changed
        && pair.blocks_added.is_empty()
        && pair.blocks_removed.is_empty()
        && pair.blocks_changed.is_empty()
        && pair.edges_added.is_empty()
        && pair.edges_removed.is_empty()
    {
        pair.note = Some(
            "instruction bytes differ in blocks that cannot be singled out without block \
             digests (a saved graph has none); diff the binaries for block detail"
                .to_string(),
        );
    }
    if pair.state == PairState::Unproven {
        pair.note = Some(
            "moved, same blocks and edges, but neither graph carries position-independent \
             digests to compare the instruction bytes"
                .to_string(),
        );
    }
    pair
}

pub(super) fn block_diff(
    old: &DiffSide,
    new: &DiffSide,
    of: &DiffFunction,
    nf: &DiffFunction,
    pair: &mut FunctionPair,
) {
    // Pair blocks: LCS over (shape, and digest where known), then the
    // remaining blocks with equal offsets and shapes.
    // With block digests (which leave out the block's offset), identical
    // blocks align wherever they moved; without, blocks align by offset.
    let digests = of.block_pi.is_some() && nf.block_pi.is_some();
    let exact = |f: &DiffFunction, i: usize, b: &Block| {
        (
            (!digests).then(|| b.addr.wrapping_sub(f.addr)),
            block_shape(b),
            f.block_pi.as_ref().and_then(|d| d.get(i).copied()),
        )
    };
    let ok: Vec<_> = of
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| exact(of, i, b))
        .collect();
    let nk: Vec<_> = nf
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| exact(nf, i, b))
        .collect();
    let mut bpairs: BTreeMap<usize, usize> = lcs(&ok, &nk).into_iter().collect();
    let taken: BTreeSet<usize> = bpairs.values().copied().collect();
    // Same shape in order among the rest: changed contents.
    let rest_o: Vec<usize> = (0..of.blocks.len())
        .filter(|i| !bpairs.contains_key(i))
        .collect();
    let rest_n: Vec<usize> = (0..nf.blocks.len())
        .filter(|j| !taken.contains(j))
        .collect();
    let so: Vec<_> = rest_o
        .iter()
        .filter_map(|&i| of.blocks.get(i).map(block_shape))
        .collect();
    let sn: Vec<_> = rest_n
        .iter()
        .filter_map(|&j| nf.blocks.get(j).map(block_shape))
        .collect();
    for (a, b) in lcs(&so, &sn) {
        if let (Some(&i), Some(&j)) = (rest_o.get(a), rest_n.get(b)) {
            bpairs.insert(i, j);
        }
    }
    let taken: BTreeSet<usize> = bpairs.values().copied().collect();
    for (i, b) in of.blocks.iter().enumerate() {
        if !bpairs.contains_key(&i) {
            pair.blocks_removed.push(block_ref(of, b));
        }
    }
    for (j, b) in nf.blocks.iter().enumerate() {
        if !taken.contains(&j) {
            pair.blocks_added.push(block_ref(nf, b));
        }
    }
    for (&i, &j) in &bpairs {
        let (Some(ob), Some(nb)) = (of.blocks.get(i), nf.blocks.get(j)) else {
            continue;
        };
        let digest_differs = match (
            of.block_pi.as_ref().and_then(|d| d.get(i)),
            nf.block_pi.as_ref().and_then(|d| d.get(j)),
        ) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        if digest_differs {
            pair.blocks_changed.push(BlockChange {
                old: block_ref(of, ob),
                new: block_ref(nf, nb),
            });
        }
    }
    // Edges: map old intra targets through the block pairing.
    let old_to_new: BTreeMap<u64, u64> = bpairs
        .iter()
        .filter_map(|(&i, &j)| Some((of.blocks.get(i)?.addr, nf.blocks.get(j)?.addr)))
        .collect();
    let edge_key = |side: &DiffSide,
                    f: &DiffFunction,
                    e: &crate::model::Edge,
                    map: Option<&BTreeMap<u64, u64>>| {
        let target = match e.addr {
            None => String::new(),
            Some(t)
                if !matches!(e.kind, EdgeKind::Call | EdgeKind::TailCall)
                    && f.blocks.iter().any(|b| b.addr == t) =>
            {
                let t = map.and_then(|m| m.get(&t).copied()).unwrap_or(t);
                format!("block@{t:#x}")
            }
            Some(t) => side
                .functions
                .binary_search_by_key(&t, |c| c.addr)
                .ok()
                .and_then(|j| side.functions.get(j))
                .map_or_else(
                    || format!("{:#x}", t.wrapping_sub(side.base)),
                    DiffFunction::display_name,
                ),
        };
        (e.kind.name().to_string(), target)
    };
    for (&i, &j) in &bpairs {
        let (Some(ob), Some(nb)) = (of.blocks.get(i), nf.blocks.get(j)) else {
            continue;
        };
        let oe: BTreeSet<(String, String)> = ob
            .succs
            .iter()
            .map(|e| edge_key(old, of, e, Some(&old_to_new)))
            .collect();
        let ne: BTreeSet<(String, String)> = nb
            .succs
            .iter()
            .map(|e| edge_key(new, nf, e, None))
            .collect();
        for e in &ob.succs {
            let k = edge_key(old, of, e, Some(&old_to_new));
            if !ne.contains(&k) {
                pair.edges_removed.push(edge_ref(of, ob, e, &k.1));
            }
        }
        for e in &nb.succs {
            let k = edge_key(new, nf, e, None);
            if !oe.contains(&k) {
                pair.edges_added.push(edge_ref(nf, nb, e, &k.1));
            }
        }
    }
    for b in &pair.blocks_removed.clone() {
        if let Some(ob) = of.blocks.iter().find(|x| x.addr == b.addr) {
            for e in &ob.succs {
                let k = edge_key(old, of, e, None);
                pair.edges_removed.push(edge_ref(of, ob, e, &k.1));
            }
        }
    }
    for b in &pair.blocks_added.clone() {
        if let Some(nb) = nf.blocks.iter().find(|x| x.addr == b.addr) {
            for e in &nb.succs {
                let k = edge_key(new, nf, e, None);
                pair.edges_added.push(edge_ref(nf, nb, e, &k.1));
            }
        }
    }
    pair.edges_added.sort();
    pair.edges_removed.sort();
}

pub(super) fn edge_ref(
    f: &DiffFunction,
    b: &Block,
    e: &crate::model::Edge,
    target: &str,
) -> EdgeRef {
    let target = match e.addr {
        Some(t) if target.starts_with("block@") => format!("+{:#x}", t.wrapping_sub(f.addr)),
        _ => target.to_string(),
    };
    EdgeRef {
        from: b.addr,
        kind: e.kind.name().to_string(),
        to: e.addr,
        target,
    }
}
