//! Linearizable reads without writing to the log (ReadIndex, §6.4 of
//! Ongaro's thesis): a leader serves a read at its commit index once a
//! quorum has confirmed, after the read arrived, that it still leads.

use super::{PendingRead, Raft};
use crate::raft::message::{NotLeader, ReadState};
use crate::raft::progress::quorum_value;

impl<C: Clone> Raft<C> {
    /// Asks for a linearizable read. When leadership is confirmed, a
    /// [`ReadState`] with `request_id` comes out of a later Ready; serve the
    /// read after applying that Ready's committed entries. If this node
    /// stops leading first (a change in [`crate::raft::SoftState`]), the
    /// request is dropped and the host should fail or retry it.
    ///
    /// The confirmation round starts with the next [`Raft::ready`], so all
    /// reads asked for before it share one round (one message to each
    /// follower and back).
    ///
    /// Without this, a host can make a read linearizable by proposing it as
    /// a command and answering when it is applied.
    pub fn read_index(&mut self, request_id: u64) -> Result<(), NotLeader> {
        self.assert_advanced();
        self.ensure_leader()?;
        // Until this term's no-op commits, our commit index may lag behind
        // what earlier leaders committed, so the read waits for it.
        let index = self.commit.max(self.leadership.term_start);
        // Only answers to messages sent from now on prove that nobody had
        // replaced us when the read arrived: the next round, which the next
        // Ready (or an earlier heartbeat) starts.
        let round = self.leadership.round + 1;
        self.leadership.read_round_wanted = true;
        self.leadership.pending_reads.push_back(PendingRead {
            request_id,
            index,
            round,
        });
        Ok(())
    }

    /// Releases, in order, the reads whose round a quorum has answered and
    /// whose index is committed.
    pub(super) fn release_reads(&mut self) {
        if self.leadership.pending_reads.is_empty() {
            return;
        }
        let rounds = self.leadership.progress.values().map(|p| p.acked_round);
        let confirmed = quorum_value(
            rounds.chain([self.leadership.round]).collect(),
            self.quorum(),
        );
        let reads = &mut self.leadership.pending_reads;
        while let Some(read) = reads.front() {
            if read.round > confirmed || read.index > self.commit {
                break;
            }
            self.read_states.push(ReadState {
                request_id: read.request_id,
                index: read.index,
            });
            reads.pop_front();
        }
    }
}
