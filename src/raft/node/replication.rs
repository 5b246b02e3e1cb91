//! AppendEntries on both sides (§5.3), fast back-off over divergent logs,
//! and the leader's commit rule (§5.4.2).

use super::Raft;
use crate::raft::message::{Append, AppendOk, AppendReject, Entry, Message, Role};
use crate::raft::progress::quorum_value;

impl<C: Clone> Raft<C> {
    /// Follower side, in our term (after the term rules).
    pub(super) fn handle_append(&mut self, from: &str, req: Append<C>) {
        if self.role == Role::Leader {
            // Only one leader per term: this cannot come from a correct peer.
            return;
        }
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from));
        }
        self.leader = Some(from.to_owned());
        self.election_elapsed = 0;
        if !req.is_well_formed() {
            return;
        }
        let reply = match self.log.term_at(req.prev_index) {
            Some(term) if term == req.prev_term => self.accept_append(req),
            held => Some(self.reject_append(&req, held)),
        };
        if let Some(reply) = reply {
            self.send(from, reply);
        }
    }

    /// `None` for entries that contradict committed ones, which no correct
    /// leader sends (Leader Completeness): they are ignored.
    fn accept_append(&mut self, req: Append<C>) -> Option<Message<C>> {
        // What we know matches is what this request covers, not our whole
        // log: a suffix past it may still be stale.
        let matched = req.prev_index + req.entries.len() as u64;
        self.log.merge(req.entries, self.commit).ok()?;
        self.commit = self.commit.max(req.commit.min(matched));
        Some(Message::AppendOk(AppendOk {
            term: self.term,
            index: matched,
            round: req.round,
        }))
    }

    /// Rejects with a hint: our last index + 1 when our log is too short,
    /// else the term we hold at `prev_index` and where that term starts, so
    /// the leader can skip the whole term in one round trip.
    fn reject_append(&self, req: &Append<C>, held: Option<u64>) -> Message<C> {
        let hint_index = match held {
            Some(term) => self.log.first_index_of_term(term),
            None => self.log.last_index() + 1,
        };
        Message::AppendReject(AppendReject {
            term: self.term,
            index: req.prev_index,
            hint_index,
            hint_term: held,
            round: req.round,
        })
    }

    pub(super) fn handle_append_ok(&mut self, from: &str, resp: AppendOk) {
        let last = self.log.last_index();
        let Some(progress) = self.leader_progress(from) else {
            return;
        };
        progress.heard(resp.round);
        if resp.index <= last {
            progress.matched_to(resp.index);
        }
        let behind = progress.next <= last;
        self.maybe_commit();
        self.release_reads();
        if behind {
            // One batch per answer lets a far-behind follower catch up
            // without flooding it.
            self.send_append(from);
        }
    }

    pub(super) fn handle_append_reject(&mut self, from: &str, resp: AppendReject) {
        // With the follower's term in our log, resume after our last entry
        // of that term; without it, skip the follower's whole term.
        let hinted_next = resp
            .hint_term
            .and_then(|term| self.log.last_index_of_term(term))
            .map_or(resp.hint_index, |index| index + 1);
        let Some(progress) = self.leader_progress(from) else {
            return;
        };
        progress.heard(resp.round);
        let retry = progress.rejected(resp.index, hinted_next);
        self.release_reads();
        if retry {
            self.send_append(from);
        }
    }

    /// The progress of `peer`, if we lead.
    fn leader_progress(&mut self, peer: &str) -> Option<&mut crate::raft::progress::Progress> {
        match self.role {
            Role::Leader => self.leadership.progress.get_mut(peer),
            _ => None,
        }
    }

    /// The periodic heartbeat: checks each follower for stalled streaming
    /// (which needs a whole heartbeat interval to mean anything), then
    /// starts a round that re-sends pending probes, as they may be lost.
    pub(super) fn send_heartbeats(&mut self) {
        for progress in self.leadership.progress.values_mut() {
            progress.heartbeat();
        }
        self.start_round(true);
        for progress in self.leadership.progress.values_mut() {
            progress.sent_since_heartbeat = false;
        }
    }

    /// Starts a new heartbeat round: every follower gets an AppendEntries
    /// now. A streaming follower gets an empty append at its match, which
    /// it always accepts, so a heartbeat overtaking entries still in flight
    /// does not look like a gap. A probing one gets its probe again when
    /// `resend_probes` (the periodic heartbeat), else an empty append at the
    /// probe's position, which answers the same question without entries.
    /// A follower that left the last interval unanswered gets that empty
    /// probe too: shipping entries into a partition every heartbeat costs
    /// bandwidth for nothing, and an answer brings them at once. The
    /// periodic heartbeat skips a streaming follower that got an append
    /// since the last one: that append did the heartbeat's work (the
    /// follower's election timer, the commit index), and reads start rounds
    /// of their own.
    pub(super) fn start_round(&mut self, resend_probes: bool) {
        self.leadership.round += 1;
        // This round is after every read asked for so far.
        self.leadership.read_round_wanted = false;
        for peer in self.peers.clone() {
            let progress = &self.leadership.progress[&peer];
            let full_probe = resend_probes && !progress.quiet;
            let (probing, next, matched) = (progress.probing, progress.next, progress.matched);
            match (probing, full_probe) {
                (true, true) => self.send_append(&peer),
                (true, false) => {
                    // The outstanding probe now, until answered.
                    self.leadership
                        .progress
                        .get_mut(&peer)
                        .expect("a peer")
                        .sent(None);
                    self.send_entries(&peer, next - 1, Vec::new());
                }
                (false, _) if resend_probes && progress.sent_since_heartbeat => {}
                (false, _) => self.send_entries(&peer, matched, Vec::new()),
            }
        }
    }

    /// Sends proposals made since the last Ready to every follower that can
    /// take them.
    pub(super) fn send_proposals(&mut self) {
        if !std::mem::take(&mut self.leadership.unsent_proposals) {
            return;
        }
        let last = self.log.last_index();
        for peer in self.peers.clone() {
            let progress = &self.leadership.progress[&peer];
            if progress.can_send() && progress.next <= last {
                self.send_append(&peer);
            }
        }
    }

    /// Sends `to` the entries from its next index, up to the batch limit.
    fn send_append(&mut self, to: &str) {
        let progress = self
            .leadership
            .progress
            .get_mut(to)
            .expect("raft: a leader tracks every peer");
        let prev_index = progress.next - 1;
        let entries = self
            .log
            .batch(progress.next, self.config.max_append_entries);
        progress.sent(entries.last().map(|e| e.index));
        self.send_entries(to, prev_index, entries);
    }

    fn send_entries(&mut self, to: &str, prev_index: u64, entries: Vec<Entry<C>>) {
        let append = Append {
            term: self.term,
            prev_index,
            prev_term: self
                .log
                .term_at(prev_index)
                .expect("raft: next index stays within the log"),
            entries,
            commit: self.commit,
            round: self.leadership.round,
        };
        if let Some(progress) = self.leadership.progress.get_mut(to) {
            progress.sent_since_heartbeat = true;
        }
        self.send(to, Message::Append(append));
    }

    /// Commits the highest index a quorum stores, if it is of our term:
    /// counting replicas of an older entry is unsafe (Figure 8); it commits
    /// along with the first entry of ours that does.
    pub(super) fn maybe_commit(&mut self) {
        let matched = self.leadership.progress.values().map(|p| p.matched);
        let stored = matched.chain([self.log.last_index()]).collect();
        let index = quorum_value(stored, self.quorum());
        if index > self.commit && self.log.term_at(index) == Some(self.term) {
            self.commit = index;
        }
    }
}
