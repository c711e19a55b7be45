//! Function entries numbered in address order, with a directory of
//! buckets for the lookup by address.
//!
//! The whole-program passes (noreturn fixpoint, prune) look a callee up by
//! address for every call of every function: millions of lookups in a
//! sorted list of hundreds of thousands of entries, where a plain binary
//! search misses the cache at nearly every step. Here the address first
//! picks a bucket (a fixed-size slice of the address space) whose entries
//! are searched: one or two cache lines in a compiled program. No hashing:
//! a hostile binary choosing its entries' addresses can at worst fill one
//! bucket, and the search within it is still a binary search.

/// Sorted, distinct entry addresses and their bucket directory.
pub(super) struct Entries {
    starts: Vec<u64>,
    /// Address of the first entry (bucket 0 starts there).
    base: u64,
    /// log2 of the bucket size in bytes.
    shift: u32,
    /// `dir[b]`: index of the first entry at or after bucket `b`'s start;
    /// one more element than there are buckets.
    dir: Vec<u32>,
}

impl Entries {
    /// Index `starts`, which must be sorted and distinct (the keys of a
    /// map in order).
    pub(super) fn new(starts: Vec<u64>) -> Self {
        let base = starts.first().copied().unwrap_or(0);
        let span = starts.last().copied().unwrap_or(0).saturating_sub(base);
        // Buckets of at least 256 bytes, and never more buckets than twice
        // the entries (plus a few): the directory's size is bounded by the
        // number of entries whatever the addresses.
        let most = (starts.len() as u64).saturating_mul(2).saturating_add(64);
        let mut shift = 8u32;
        while shift < 63 && (span >> shift) >= most {
            shift = shift.saturating_add(1);
        }
        let buckets = usize::try_from(span >> shift)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let mut dir: Vec<u32> = Vec::with_capacity(buckets.saturating_add(1));
        let mut i = 0usize;
        for b in 0..buckets {
            let lo = base.saturating_add((b as u64) << shift);
            while starts.get(i).is_some_and(|&s| s < lo) {
                i = i.saturating_add(1);
            }
            dir.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        dir.push(u32::try_from(starts.len()).unwrap_or(u32::MAX));
        Self {
            starts,
            base,
            shift,
            dir,
        }
    }

    /// The number of entries.
    pub(super) fn len(&self) -> usize {
        self.starts.len()
    }

    /// The entries in address order.
    pub(super) fn starts(&self) -> &[u64] {
        &self.starts
    }

    /// The index of the entry at `addr`.
    pub(super) fn index(&self, addr: u64) -> Option<usize> {
        let b = usize::try_from(addr.checked_sub(self.base)? >> self.shift).ok()?;
        let lo = usize::try_from(*self.dir.get(b)?).ok()?;
        let hi = usize::try_from(*self.dir.get(b.checked_add(1)?)?).ok()?;
        let i = self.starts.get(lo..hi)?.binary_search(&addr).ok()?;
        lo.checked_add(i)
    }
}

#[cfg(test)]
mod tests {
    use super::Entries;

    fn check(starts: &[u64]) {
        let e = Entries::new(starts.to_vec());
        for (i, &s) in starts.iter().enumerate() {
            assert_eq!(e.index(s), Some(i), "entry {s:#x}");
            for probe in [s.wrapping_sub(1), s.wrapping_add(1)] {
                if !starts.contains(&probe) {
                    assert_eq!(e.index(probe), None, "probe {probe:#x}");
                }
            }
        }
        assert_eq!(e.len(), starts.len());
    }

    #[test]
    fn finds_every_entry_and_nothing_else() {
        check(&[]);
        check(&[0x1000]);
        check(&[0, 1, 2, 0x100, 0x101, 0x1_0000]);
        let dense: Vec<u64> = (0..5000u64).map(|i| 0x40_0000 + i * 37).collect();
        check(&dense);
        // Far apart: the directory stays bounded by the entry count.
        let sparse = [1u64, 0x1000, 1 << 40, (1 << 62) + 3, u64::MAX - 1, u64::MAX];
        check(&sparse);
        let e = Entries::new(sparse.to_vec());
        assert!(e.dir.len() <= 2 * sparse.len() + 66);
        assert_eq!(e.index(0), None);
    }
}
