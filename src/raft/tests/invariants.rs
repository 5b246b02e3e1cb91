//! Raft's safety properties (Figure 3 of the paper, plus the derived ones
//! MIT 6.5840 and raft-rs test), checked after every step of a simulated
//! cluster. The checker sees each node's state and the Ready it produced,
//! so each check costs only what changed.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::raft::{Entry, Raft, Ready, Role};

/// The command type of simulated clusters: unique numbers.
pub(super) type Cmd = u64;

/// What the checker remembers about one node between its steps.
#[derive(Debug, Clone, Default)]
struct Seen {
    term: u64,
    /// Commit index, for this incarnation (a restart may lower it).
    commit: u64,
    /// Last index the host applied, for this incarnation.
    applied: u64,
    /// While leading: the term and the log length at the last step.
    led: Option<(u64, u64)>,
}

/// The global view the invariants are checked against.
#[derive(Debug, Default)]
pub(super) struct Checker {
    seen: Vec<Seen>,
    /// Election safety: the one leader of each term.
    leaders: HashMap<u64, usize>,
    /// One vote per node and term.
    votes: HashMap<(usize, u64), String>,
    /// Log matching: the one (previous term, command) an entry with a given
    /// (index, term) may have on any node. With equal predecessors, equal
    /// (index, term) implies equal prefixes, by induction.
    entries: HashMap<(u64, u64), (u64, Option<Cmd>)>,
    /// Every entry any node has learnt is committed, in index order.
    committed: Vec<Entry<Cmd>>,
    /// For each of those, the term in which it became committed: that of
    /// the leader that counted it (the first node to learn it), which may
    /// be later than the entry's own term.
    commit_terms: Vec<u64>,
    /// For each read asked for, how much was committed when it was asked.
    read_floors: HashMap<u64, u64>,
    served_reads: HashSet<u64>,
}

type Verdict<T = ()> = Result<T, String>;

fn check(ok: bool, what: impl FnOnce() -> String) -> Verdict {
    if ok { Ok(()) } else { Err(what()) }
}

impl Checker {
    pub fn new(nodes: usize) -> Checker {
        Checker {
            seen: vec![Seen::default(); nodes],
            ..Checker::default()
        }
    }

    /// Everything committed so far, as far as any node knows.
    pub fn committed(&self) -> &[Entry<Cmd>] {
        &self.committed
    }

    /// Checks node `i` after a step that produced `ready` (taken, not yet
    /// advanced). Returns the indices that became known as committed.
    pub fn after_step(
        &mut self,
        i: usize,
        raft: &Raft<Cmd>,
        ready: &Ready<Cmd>,
    ) -> Verdict<Range<u64>> {
        self.check_term_and_vote(i, raft, ready)?;
        self.check_leader(i, raft, ready)?;
        self.check_log_matching(raft, ready)?;
        let fresh = self.check_commit(i, raft)?;
        self.check_applied(i, raft, ready)?;
        self.check_reads(raft, ready)?;
        Ok(fresh)
    }

    fn check_term_and_vote(&mut self, i: usize, raft: &Raft<Cmd>, ready: &Ready<Cmd>) -> Verdict {
        let seen = &mut self.seen[i];
        check(raft.term() >= seen.term, || {
            format!("n{i}: term went back from {} to {}", seen.term, raft.term())
        })?;
        seen.term = raft.term();
        if let Some(hard) = &ready.hard_state
            && let Some(vote) = &hard.vote
        {
            let first = self
                .votes
                .entry((i, hard.term))
                .or_insert_with(|| vote.clone());
            check(first == vote, || {
                format!("n{i}: voted for {first} and {vote} in term {}", hard.term)
            })?;
        }
        Ok(())
    }

    /// Election safety and leader append-only.
    fn check_leader(&mut self, i: usize, raft: &Raft<Cmd>, ready: &Ready<Cmd>) -> Verdict {
        if raft.role() != Role::Leader {
            self.seen[i].led = None;
            return Ok(());
        }
        let term = raft.term();
        let leader = *self.leaders.entry(term).or_insert(i);
        check(leader == i, || {
            format!("n{leader} and n{i} both lead term {term}")
        })?;
        match self.seen[i].led {
            Some((led_term, len)) if led_term == term => {
                let first_new = ready.entries.first().map_or(u64::MAX, |e| e.index);
                check(first_new > len && raft.last_index() >= len, || {
                    format!("n{i}: leader of term {term} rewrote its log below {len}")
                })?;
            }
            _ => self.check_complete(i, raft, 0..self.committed.len() as u64)?,
        }
        self.seen[i].led = Some((term, raft.last_index()));
        Ok(())
    }

    /// Leader completeness: a leader holds every entry committed in an
    /// earlier term (among the 0-based positions `range` of `committed`).
    pub fn check_complete(&self, i: usize, raft: &Raft<Cmd>, range: Range<u64>) -> Verdict {
        let range = range.start as usize..range.end as usize;
        let terms = &self.commit_terms[range.clone()];
        for (entry, &commit_term) in self.committed[range].iter().zip(terms) {
            if commit_term >= raft.term() {
                continue;
            }
            let held = raft.log().get(entry.index as usize - 1);
            check(held == Some(entry), || {
                format!(
                    "n{i} leads term {} without committed entry {entry:?} (has {held:?})",
                    raft.term()
                )
            })?;
        }
        Ok(())
    }

    fn check_log_matching(&mut self, raft: &Raft<Cmd>, ready: &Ready<Cmd>) -> Verdict {
        let log = raft.log();
        for entry in &ready.entries {
            check(entry.term <= raft.term(), || {
                format!("{}: entry {entry:?} from a future term", raft.id())
            })?;
            let prev_term = match entry.index {
                1 => 0,
                index => log[index as usize - 2].term,
            };
            let shape = (prev_term, entry.cmd);
            let known = *self
                .entries
                .entry((entry.index, entry.term))
                .or_insert(shape);
            check(known == shape, || {
                format!(
                    "{}: entry {entry:?} after term {prev_term} differs from another node's \
                     (previous term, command) {known:?}",
                    raft.id()
                )
            })?;
        }
        Ok(())
    }

    /// Monotonic commit within the log, and the committed prefix agreed by
    /// every node (state-machine safety at the log level).
    fn check_commit(&mut self, i: usize, raft: &Raft<Cmd>) -> Verdict<Range<u64>> {
        let (old, new) = (self.seen[i].commit, raft.commit_index());
        check(old <= new && new <= raft.last_index(), || {
            format!(
                "n{i}: commit went from {old} to {new} with {} entries",
                raft.last_index()
            )
        })?;
        self.seen[i].commit = new;
        let before = self.committed.len() as u64;
        for entry in &raft.log()[old as usize..new as usize] {
            match self.committed.get(entry.index as usize - 1) {
                Some(known) => check(known == entry, || {
                    format!("n{i} committed {entry:?} where {known:?} was committed")
                })?,
                None => {
                    self.committed.push(entry.clone());
                    self.commit_terms.push(raft.term());
                }
            }
        }
        Ok(before..self.committed.len() as u64)
    }

    /// Applied entries are the committed ones, in order, each once, never
    /// beyond the commit index.
    fn check_applied(&mut self, i: usize, raft: &Raft<Cmd>, ready: &Ready<Cmd>) -> Verdict {
        for entry in &ready.committed {
            let seen = &mut self.seen[i];
            check(entry.index == seen.applied + 1, || {
                format!("n{i} applied {} after {}", entry.index, seen.applied)
            })?;
            check(entry.index <= raft.commit_index(), || {
                format!(
                    "n{i} applied {} beyond commit {}",
                    entry.index,
                    raft.commit_index()
                )
            })?;
            let committed = self.committed.get(entry.index as usize - 1);
            check(committed == Some(entry), || {
                format!("n{i} applied {entry:?} where {committed:?} was committed")
            })?;
            seen.applied = entry.index;
        }
        Ok(())
    }

    /// A read must see everything committed before it was asked for.
    fn check_reads(&mut self, raft: &Raft<Cmd>, ready: &Ready<Cmd>) -> Verdict {
        for read in &ready.read_states {
            let floor = self.read_floors[&read.request_id];
            check(
                read.index >= floor && read.index <= raft.commit_index(),
                || {
                    format!(
                        "{} served read {} at index {} with {floor} committed when asked",
                        raft.id(),
                        read.request_id,
                        read.index
                    )
                },
            )?;
            check(self.served_reads.insert(read.request_id), || {
                format!("read {} served twice", read.request_id)
            })?;
        }
        Ok(())
    }

    /// Records that read `request_id` was asked for now.
    pub fn read_asked(&mut self, request_id: u64) {
        self.read_floors
            .insert(request_id, self.committed.len() as u64);
    }

    /// Node `i` lost its volatile state.
    pub fn crashed(&mut self, i: usize) {
        let seen = &mut self.seen[i];
        seen.led = None;
        seen.applied = 0;
    }

    /// Node `i` came back from its storage: it must remember its term, and
    /// its commit index can only be one that was committed.
    pub fn restarted(&mut self, i: usize, raft: &Raft<Cmd>) -> Verdict {
        let seen = &mut self.seen[i];
        check(raft.term() == seen.term, || {
            format!(
                "n{i} restarted in term {} after term {}",
                raft.term(),
                seen.term
            )
        })?;
        check(raft.commit_index() <= self.committed.len() as u64, || {
            format!(
                "n{i} restarted with commit {} beyond what was committed",
                raft.commit_index()
            )
        })?;
        seen.commit = raft.commit_index();
        Ok(())
    }
}
