//! Indirect jumps of one function: the paths that lead to them and the
//! jump tables (or single targets) the decoder resolves from those paths.

use std::collections::BTreeSet;

use crate::arch::{IndirectQuery, IndirectTarget};
use crate::limits;

use super::explore::{Ctx, Explored, Sp, padding_then_entry};

/// Collect up to `MAX_PATH` instructions leading to `jump`, in execution
/// order: back through straight-line code and through the one jump that
/// enters a block. At a join point (a block entered from more than one
/// place) the walk stops, unless `through_joins`, in which case it goes on
/// through the straight-line predecessor (the loop preheader, for a switch
/// inside a loop whose table base was loaded before the loop).
pub(super) fn path_to(ex: &Explored, jump: u64, through_joins: bool) -> Vec<u64> {
    const MAX_PATH: usize = 64;
    let mut rev = vec![jump];
    let mut visited = BTreeSet::from([jump]);
    let mut cur = jump;
    while rev.len() < MAX_PATH {
        let straight = ex
            .insns
            .prev_before(cur)
            .filter(|p| {
                p.end() == cur && p.flow.falls_through() && !ex.noreturn_calls.contains(&p.addr)
            })
            .map(|p| p.addr);
        let jumps: &[u64] = ex.jump_preds.get(&cur).map_or(&[], Vec::as_slice);
        let next = match (straight, jumps) {
            (Some(p), []) => Some(p),
            (None, [p]) => Some(*p),
            (Some(p), _) if through_joins => Some(p),
            (None, many) if through_joins => {
                many.iter().copied().filter(|p| !visited.contains(p)).min()
            }
            _ => None,
        };
        let Some(p) = next.filter(|p| !visited.contains(p)) else {
            break;
        };
        visited.insert(p);
        rev.push(p);
        cur = p;
    }
    rev.reverse();
    rev
}

pub(super) fn resolve_indirect(
    ctx: &Ctx<'_>,
    ex: &mut Explored,
    jump: u64,
    sp: Sp,
    work: &mut Vec<(u64, Sp)>,
) {
    // Try the shortest path first, then longer ones, one block at a time: a
    // longer path may pin the index to the constant of one particular
    // predecessor (a state machine re-entering its switch), a shorter one
    // may miss the bound or the table base set before a loop.
    let full = path_to(ex, jump, true);
    let block_starts: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|&(i, a)| i == 0 || ex.leaders.contains(a))
        .map(|(i, _)| i)
        .collect();
    // A slot is only an answer when the loader fills it; a load from a
    // table at a path-specific constant index is not.
    let fde = ctx
        .fde_at(ex.start)
        .map(|f| (f.start, f.start.saturating_add(f.len)));
    // A table sized only by its index's width (a mask, no compare: the
    // computed-goto dispatch of an interpreter, `switch (x & 7)`) may be
    // shorter than the mask says: its extent is the run of entries that are
    // code addresses of this function (inside its own FDE, or, for a
    // function without one, taken to be contiguous, see `leaves_function`,
    // between its entry and the next called function), up to the first that
    // is not.
    let (lo, hi) = fde.unwrap_or_else(|| {
        let hi = ctx
            .called
            .range(ex.start.saturating_add(1)..)
            .next()
            .copied()
            .unwrap_or(u64::MAX);
        (ex.start, hi)
    });
    let admit = |r: IndirectTarget| match r {
        IndirectTarget::Slot(s) => ctx.is_loader_slot(s).then_some(r),
        IndirectTarget::NarrowTable(mut t) => {
            let n = t
                .targets
                .iter()
                .take_while(|&&x| x >= lo && x < hi && ctx.in_code(x))
                .count();
            t.targets.truncate(n);
            (n > 0).then_some(IndirectTarget::NarrowTable(t))
        }
        IndirectTarget::Table(_) => Some(r),
    };
    // Block boundaries first; then any instruction boundary, for a switch
    // whose dispatch block is re-entered from cases not discovered yet.
    let mut starts: Vec<usize> = block_starts.iter().rev().copied().collect();
    starts.extend((0..full.len()).rev().filter(|i| !block_starts.contains(i)));
    let function: Vec<u64> = ex.insns.iter().map(|i| i.addr).collect();
    let resolved = ctx.dec.resolve_indirect_in(&IndirectQuery {
        image: ctx.image,
        path: &full,
        starts: &starts,
        function: &function,
        admit: &admit,
    });
    let table = match resolved {
        Some(IndirectTarget::Table(t) | IndirectTarget::NarrowTable(t)) => t,
        Some(IndirectTarget::Slot(s)) if ctx.is_loader_slot(s) => {
            // The loader fills GOT entries with function addresses: a tail
            // call through the slot.
            ex.unbalanced |= sp.is_some_and(|d| d != 0);
            ex.tails.insert(jump);
            ex.import_jumps.insert(jump, s);
            return;
        }
        _ => {
            ex.unresolved.insert(jump);
            ex.indirect_tail |= sp == Some(0);
            return;
        }
    };
    // Every target must be code in the same section as the jump, or the
    // bound was wrong: reject the whole table rather than guess.
    let same = ctx.range_of(jump).map(|r| (r.start, r.end));
    let ok = !table.targets.is_empty()
        && table.targets.len() as u64 <= limits::MAX_JUMP_TABLE_ENTRIES
        && table
            .targets
            .iter()
            .all(|&t| same.is_some_and(|(s, e)| t >= s && t < e));
    if !ok {
        ex.rejected_tables.insert(jump);
        ex.unresolved.insert(jump);
        return;
    }
    for &t in &table.targets {
        // LLVM points the cases it proved unreachable just past the end of
        // the function: at padding, or at the next function's entry. Keep
        // the edge (it is in the table) but decode nothing there.
        if (t != ex.start && ctx.known.contains(&t)) || padding_then_entry(ctx, t) {
            continue;
        }
        ex.jump_preds.entry(t).or_default().push(jump);
        if ex.leaders.insert(t) || !ex.insns.contains(t) {
            work.push((t, sp));
        }
    }
    ex.tables.insert(jump, table);
}
