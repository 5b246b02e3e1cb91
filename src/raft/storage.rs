//! Where a node keeps what must survive a restart: term, vote and log.

use std::io;
use std::ops::Range;

use super::message::{Entry, HardState, Ready};

/// Durable state of one node. Every write is durable when it returns; the
/// host persists a [`Ready`] with [`Storage::persist`] before sending its
/// messages.
pub trait Storage<C> {
    /// The stored term, vote and commit index (all zero for a new node).
    fn hard_state(&self) -> HardState;

    /// Index of the last stored entry, 0 when the log is empty.
    fn last_index(&self) -> u64;

    /// The stored entries with indices in `range`, which must lie within
    /// `1..=last_index()`.
    fn entries(&self, range: Range<u64>) -> io::Result<Vec<Entry<C>>>;

    /// Stores `entries` (consecutive, the first at most `last_index() + 1`),
    /// first removing every stored entry at or after the first one's index.
    fn append(&mut self, entries: &[Entry<C>]) -> io::Result<()>;

    /// Removes every entry at or after index `from`.
    fn truncate_from(&mut self, from: u64) -> io::Result<()>;

    /// Replaces the hard state, atomically.
    fn set_hard_state(&mut self, state: &HardState) -> io::Result<()>;

    /// Persists what `ready` asks for: its entries, then its hard state (so
    /// a stored commit index never points past the stored log).
    fn persist(&mut self, ready: &Ready<C>) -> io::Result<()> {
        if !ready.entries.is_empty() {
            self.append(&ready.entries)?;
        }
        if let Some(state) = &ready.hard_state {
            self.set_hard_state(state)?;
        }
        Ok(())
    }
}

/// Checks the preconditions of [`Storage::append`] against a log ending at
/// `last_index`.
pub(crate) fn check_append<C>(last_index: u64, entries: &[Entry<C>]) -> io::Result<()> {
    let Some(first) = entries.first() else {
        return Ok(());
    };
    let consecutive = entries.iter().zip(first.index..).all(|(e, i)| e.index == i);
    if first.index == 0 || first.index > last_index + 1 || !consecutive {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "entries to append must be consecutive and start within 1..={}",
                last_index + 1
            ),
        ));
    }
    Ok(())
}

/// Checks the precondition of [`Storage::entries`].
pub(crate) fn check_range(last_index: u64, range: &Range<u64>) -> io::Result<()> {
    if range.start == 0 || range.end > last_index + 1 || range.start > range.end {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("entries {range:?} are not within 1..={last_index}"),
        ));
    }
    Ok(())
}

/// Storage in memory: survives a simulated restart, not a real one.
#[derive(Debug, Clone)]
pub struct MemStorage<C> {
    hard: HardState,
    entries: Vec<Entry<C>>,
}

impl<C> Default for MemStorage<C> {
    fn default() -> Self {
        MemStorage {
            hard: HardState::default(),
            entries: Vec::new(),
        }
    }
}

impl<C> MemStorage<C> {
    /// An empty storage, as for a new node.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Clone> Storage<C> for MemStorage<C> {
    fn hard_state(&self) -> HardState {
        self.hard.clone()
    }

    fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    fn entries(&self, range: Range<u64>) -> io::Result<Vec<Entry<C>>> {
        check_range(self.last_index(), &range)?;
        Ok(self.entries[range.start as usize - 1..range.end as usize - 1].to_vec())
    }

    fn append(&mut self, entries: &[Entry<C>]) -> io::Result<()> {
        check_append(self.last_index(), entries)?;
        if let Some(first) = entries.first() {
            self.entries.truncate(first.index as usize - 1);
            self.entries.extend_from_slice(entries);
        }
        Ok(())
    }

    fn truncate_from(&mut self, from: u64) -> io::Result<()> {
        self.entries.truncate(from.saturating_sub(1) as usize);
        Ok(())
    }

    fn set_hard_state(&mut self, state: &HardState) -> io::Result<()> {
        self.hard = state.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry<String> {
        Entry {
            index,
            term,
            cmd: Some(format!("c{index}")),
        }
    }

    #[test]
    fn append_overwrites_from_the_first_index_and_checks_gaps() {
        let mut s = MemStorage::new();
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
        s.append(&[entry(2, 2)]).unwrap();
        assert_eq!(s.last_index(), 2);
        assert_eq!(s.entries(2..3).unwrap(), [entry(2, 2)]);
        assert!(s.append(&[entry(4, 2)]).is_err());
        assert!(s.append(&[entry(3, 2), entry(5, 2)]).is_err());
        assert!(s.entries(1..4).is_err());
        s.truncate_from(2).unwrap();
        assert_eq!(s.entries(1..2).unwrap(), [entry(1, 1)]);
    }
}
