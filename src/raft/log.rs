//! The node's copy of the log, kept whole in memory, and how much of it is
//! already durable. Storage only sees what [`super::Ready`] hands the host.

use std::io;

use super::message::Entry;

/// The log: `entries[i]` has index `i + 1`. Index 0 is the empty prefix,
/// with term 0, that every log shares.
#[derive(Debug, Clone)]
pub(crate) struct Log<C> {
    entries: Vec<Entry<C>>,
    /// Entries up to this index are durable; the rest is for the next Ready.
    stable: u64,
}

impl<C: Clone> Log<C> {
    /// A log restored from storage, all of it durable.
    pub fn restore(entries: Vec<Entry<C>>) -> io::Result<Log<C>> {
        let numbered = entries.iter().zip(1..).all(|(e, i)| e.index == i);
        let ordered = entries.windows(2).all(|w| w[0].term <= w[1].term);
        if !numbered || !ordered {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stored log entries are not numbered from 1 in term order",
            ));
        }
        let stable = entries.len() as u64;
        Ok(Log { entries, stable })
    }

    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// The term of the entry at `index`; `None` past the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        match index {
            0 => Some(0),
            _ => self.entries.get(index as usize - 1).map(|e| e.term),
        }
    }

    pub fn all(&self) -> &[Entry<C>] {
        &self.entries
    }

    /// Entries `from..=to`, clipped to the log.
    pub fn range(&self, from: u64, to: u64) -> &[Entry<C>] {
        let to = to.min(self.last_index()) as usize;
        let from = (from.max(1) as usize - 1).min(to);
        &self.entries[from..to]
    }

    /// At most `max` entries from `from` on.
    pub fn batch(&self, from: u64, max: usize) -> Vec<Entry<C>> {
        self.range(from, from.saturating_add(max as u64).saturating_sub(1))
            .to_vec()
    }

    /// Appends a new entry of `term` (a leader's own) and returns its index.
    pub fn push(&mut self, term: u64, cmd: Option<C>) -> u64 {
        let index = self.last_index() + 1;
        self.entries.push(Entry { index, term, cmd });
        index
    }

    /// Adds entries that follow a prefix already known to match the leader's.
    /// Entries the log already holds with the same term are kept as they are,
    /// so a duplicated or reordered AppendEntries never shortens the log; the
    /// log is cut only at the first entry whose term differs.
    ///
    /// If that cut would remove an entry at or below `commit`, the log is
    /// left as it was and the index of that entry is the error: committed
    /// entries are never overwritten, and only a broken leader asks to.
    pub fn merge(&mut self, entries: Vec<Entry<C>>, commit: u64) -> Result<(), u64> {
        for entry in entries {
            match self.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                // The first conflict: every entry before it matched, so
                // nothing has changed yet.
                Some(_) if entry.index <= commit => return Err(entry.index),
                Some(_) => self.truncate_from(entry.index),
                None => {}
            }
            self.entries.push(entry);
        }
        Ok(())
    }

    fn truncate_from(&mut self, index: u64) {
        self.entries.truncate(index as usize - 1);
        self.stable = self.stable.min(index - 1);
    }

    /// The first index holding `term`, for a term the log holds.
    pub fn first_index_of_term(&self, term: u64) -> u64 {
        // Terms never decrease along a log, so a binary search finds it.
        self.entries.partition_point(|e| e.term < term) as u64 + 1
    }

    /// The last index holding `term`, if the log holds that term at all.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        let end = self.entries.partition_point(|e| e.term <= term);
        (end > 0 && self.entries[end - 1].term == term).then_some(end as u64)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as
    /// up to date as this one (§5.4.1): a later last term wins, and with the
    /// same last term the longer log wins.
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Entries not yet durable.
    pub fn unstable(&self) -> &[Entry<C>] {
        &self.entries[self.stable as usize..]
    }

    /// Records that the host has persisted entries up to `index`.
    pub fn mark_stable(&mut self, index: u64) {
        self.stable = index.min(self.last_index());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(terms: &[u64]) -> Log<u64> {
        let entries = terms
            .iter()
            .zip(1..)
            .map(|(&term, index)| Entry {
                index,
                term,
                cmd: Some(index * 10),
            })
            .collect();
        Log::restore(entries).unwrap()
    }

    fn terms(log: &Log<u64>) -> Vec<u64> {
        log.all().iter().map(|e| e.term).collect()
    }

    fn entry(index: u64, term: u64) -> Entry<u64> {
        Entry {
            index,
            term,
            cmd: Some(index * 100),
        }
    }

    #[test]
    fn restore_rejects_gaps_and_term_regressions() {
        assert!(Log::restore(vec![entry(2, 1)]).is_err());
        assert!(Log::restore(vec![entry(1, 2), entry(2, 1)]).is_err());
        assert_eq!(log(&[1, 1, 2]).last_index(), 3);
    }

    #[test]
    fn terms_and_ranges() {
        let log = log(&[1, 1, 2, 3, 3]);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(6), None);
        assert_eq!(log.range(2, 3).len(), 2);
        assert_eq!(log.range(4, 99).len(), 2);
        assert!(log.range(6, 9).is_empty());
        assert_eq!(
            log.batch(2, 2).iter().map(|e| e.index).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(log.first_index_of_term(3), 4);
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.last_index_of_term(2), Some(3));
        assert_eq!(log.last_index_of_term(4), None);
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let log = log(&[1, 2, 2]);
        assert!(log.is_up_to_date(1, 3));
        assert!(log.is_up_to_date(3, 2));
        assert!(!log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(9, 1));
    }

    #[test]
    fn merge_keeps_matching_entries_and_cuts_only_at_a_conflict() {
        let mut l = log(&[1, 1, 1, 1]);
        // A stale, shorter copy of what the log already has changes nothing.
        l.merge(vec![entry(2, 1)], 0).unwrap();
        assert_eq!(terms(&l), [1, 1, 1, 1]);
        assert!(l.unstable().is_empty());
        // A conflict at 3 cuts 3.. and appends the new suffix.
        l.merge(vec![entry(2, 1), entry(3, 2)], 1).unwrap();
        assert_eq!(terms(&l), [1, 1, 2]);
        assert_eq!(l.unstable().len(), 1);
        assert_eq!(l.all()[2].cmd, Some(300));
    }

    #[test]
    fn merge_refuses_to_overwrite_committed_entries() {
        let mut l = log(&[1, 1]);
        let conflict = vec![entry(1, 1), entry(2, 2), entry(3, 2)];
        assert_eq!(l.merge(conflict, 2), Err(2));
        assert_eq!(terms(&l), [1, 1]);
        assert!(l.unstable().is_empty());
    }
}
