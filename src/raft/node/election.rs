//! Terms, votes and elections, pre-vote included (§5.1, §5.2, §5.4.1 of the
//! Raft paper; pre-vote and leader stickiness from §9.6 and §4.2.3 of
//! Ongaro's thesis).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::Raft;
use crate::raft::message::{AppendReject, Message, Role, VoteRequest, VoteResponse};

impl<C: Clone> Raft<C> {
    /// Applies the term rules every message passes first. Returns false when
    /// the message must go no further.
    pub(super) fn observe_term(&mut self, from: &str, msg: &Message<C>) -> bool {
        let term = msg.term();
        match term.cmp(&self.term) {
            Ordering::Equal => true,
            Ordering::Less => {
                self.answer_stale(from, msg);
                false
            }
            Ordering::Greater => self.observe_higher_term(from, msg, term),
        }
    }

    fn observe_higher_term(&mut self, from: &str, msg: &Message<C>, term: u64) -> bool {
        match msg {
            // A pre-vote names a term nobody has entered yet: not adopted.
            Message::PreVote(_) => true,
            Message::PreVoteResp(resp) if resp.granted => true,
            // Leader stickiness: while we hear from a leader, a candidate
            // with a higher term (say, a node back from a partition) is
            // ignored rather than allowed to depose it.
            Message::Vote(_) if self.config.check_quorum && self.in_lease() => false,
            Message::Append(_) => {
                self.become_follower(term, Some(from));
                true
            }
            _ => {
                self.become_follower(term, None);
                true
            }
        }
    }

    /// Tells a sender from an older term about ours, so a deposed leader or
    /// a stale candidate steps down. Answers need no answer.
    fn answer_stale(&mut self, from: &str, msg: &Message<C>) {
        let refusal = VoteResponse {
            term: self.term,
            granted: false,
        };
        let reply = match msg {
            Message::PreVote(_) => Message::PreVoteResp(refusal),
            Message::Vote(_) => Message::VoteResp(refusal),
            Message::Append(req) => Message::AppendReject(AppendReject {
                term: self.term,
                index: req.prev_index,
                hint_index: self.log.last_index() + 1,
                hint_term: None,
                round: req.round,
            }),
            _ => return,
        };
        self.send(from, reply);
    }

    /// True while this node trusts a leader it heard from recently (or
    /// leads itself): it then refuses to help anyone replace that leader.
    pub(super) fn in_lease(&self) -> bool {
        self.leader.is_some() && self.election_elapsed < self.config.election_timeout_min
    }

    /// The election timer fired.
    pub(super) fn start_election(&mut self) {
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    /// Asks for pre-votes for `term + 1` while staying in `term`, so a node
    /// that cannot win does not push everyone's term up.
    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timer();
        self.campaign(self.term + 1, Message::PreVote);
    }

    fn become_candidate(&mut self) {
        self.term += 1;
        self.vote = Some(self.id.clone());
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_election_timer();
        self.campaign(self.term, Message::Vote);
    }

    fn campaign(&mut self, term: u64, request: fn(VoteRequest) -> Message<C>) {
        self.votes = BTreeMap::from([(self.id.clone(), true)]);
        let req = VoteRequest {
            term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        for peer in self.peers.clone() {
            self.send(&peer, request(req.clone()));
        }
        // A single-node cluster wins at once.
        self.count_votes();
    }

    /// A pre-vote is granted to a candidate whose log is up to date, for a
    /// term above ours, unless we still hear from a leader.
    pub(super) fn handle_pre_vote(&mut self, from: &str, req: VoteRequest) {
        let granted = req.term > self.term
            && !self.in_lease()
            && self.log.is_up_to_date(req.last_index, req.last_term);
        let term = if granted { req.term } else { self.term };
        self.send(from, Message::PreVoteResp(VoteResponse { term, granted }));
    }

    /// A vote (in our term, after the term rules) goes to at most one
    /// candidate per term, and only to one whose log is up to date.
    pub(super) fn handle_vote(&mut self, from: &str, req: VoteRequest) {
        let free = self.vote.is_none() && self.leader.is_none();
        let can_vote = free || self.vote.as_deref() == Some(from);
        let granted = can_vote && self.log.is_up_to_date(req.last_index, req.last_term);
        if granted {
            self.vote = Some(from.to_owned());
            // Granting a vote defers our own candidacy.
            self.election_elapsed = 0;
        }
        let term = self.term;
        self.send(from, Message::VoteResp(VoteResponse { term, granted }));
    }

    pub(super) fn handle_pre_vote_response(&mut self, from: &str, resp: VoteResponse) {
        // A grant echoes the term we asked for; a refusal carries the
        // voter's term, at most ours (a higher one made us a follower).
        let current = !resp.granted || resp.term == self.term + 1;
        if self.role == Role::PreCandidate && current {
            self.record_vote(from, resp.granted);
        }
    }

    pub(super) fn handle_vote_response(&mut self, from: &str, resp: VoteResponse) {
        if self.role == Role::Candidate {
            self.record_vote(from, resp.granted);
        }
    }

    fn record_vote(&mut self, from: &str, granted: bool) {
        self.votes.insert(from.to_owned(), granted);
        self.count_votes();
    }

    fn count_votes(&mut self) {
        let granted = self.votes.values().filter(|g| **g).count();
        let refused = self.votes.len() - granted;
        if granted >= self.quorum() {
            match self.role {
                Role::PreCandidate => self.become_candidate(),
                Role::Candidate => self.become_leader(),
                Role::Follower | Role::Leader => {}
            }
        } else if refused >= self.quorum() {
            self.become_follower(self.term, None);
        }
    }
}
