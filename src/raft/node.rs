//! The Raft state machine: state, lifecycle, the host-facing calls and the
//! Ready/advance hand-off. Elections, replication and reads live in the
//! child modules, each an `impl` block of [`Raft`].

mod election;
mod read_index;
mod replication;

use std::collections::{BTreeMap, VecDeque};
use std::io;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::log::Log;
use super::message::{
    Entry, HardState, Message, NotLeader, Outgoing, ReadState, Ready, Role, SoftState,
};
use super::progress::Progress;
use super::storage::Storage;
use crate::protocol::NodeId;

/// Timing (in ticks) and behaviour switches of a Raft node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Fewest ticks without a leader before a follower campaigns. Also the
    /// check-quorum period and how long a follower trusts a leader it heard.
    pub election_timeout_min: u64,
    /// Election timeouts are drawn from `election_timeout_min..election_timeout_max`.
    pub election_timeout_max: u64,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_interval: u64,
    /// Most entries in one AppendEntries message.
    pub max_append_entries: usize,
    /// Ask for pre-votes before campaigning, so a node cut off from the
    /// cluster does not inflate its term and depose a healthy leader later.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for an election timeout
    /// steps down, and a follower that hears from its leader ignores vote
    /// requests.
    pub check_quorum: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            election_timeout_min: 10,
            election_timeout_max: 20,
            heartbeat_interval: 2,
            max_append_entries: 64,
            pre_vote: true,
            check_quorum: true,
        }
    }
}

impl Config {
    fn validate(&self) {
        assert!(
            self.heartbeat_interval >= 1,
            "heartbeat_interval must be at least 1 tick"
        );
        assert!(
            self.heartbeat_interval < self.election_timeout_min,
            "heartbeats must come more often than election timeouts"
        );
        assert!(
            self.election_timeout_min < self.election_timeout_max,
            "the election timeout range must not be empty"
        );
        assert!(
            self.max_append_entries >= 1,
            "max_append_entries must be at least 1"
        );
    }
}

/// A linearizable read waiting for its heartbeat round and its index.
#[derive(Debug, Clone)]
struct PendingRead {
    request_id: u64,
    index: u64,
    round: u64,
}

/// State that only means something while leading; reset on every election.
#[derive(Debug, Clone, Default)]
struct Leadership {
    progress: BTreeMap<NodeId, Progress>,
    /// Heartbeat round: bumped for every broadcast, echoed by followers, so
    /// an answer proves the follower still followed us after the round began.
    round: u64,
    /// Index of this term's no-op: reads wait until it commits.
    term_start: u64,
    pending_reads: VecDeque<PendingRead>,
    /// Reads wait for a round that the next Ready starts, so every read
    /// asked for between two Readies shares one round.
    read_round_wanted: bool,
    /// Proposals are waiting to go out with the next Ready.
    unsent_proposals: bool,
}

/// What the last Ready handed out, recorded when `advance` confirms it.
#[derive(Debug, Clone)]
struct Handed {
    stable: u64,
    applied: u64,
    hard: HardState,
    soft: SoftState,
}

/// A Raft node as a pure state machine: no I/O, no clock, no threads.
///
/// Drive it with [`Raft::tick`], [`Raft::step`], [`Raft::propose`] and
/// [`Raft::read_index`]; after each call, if [`Raft::has_ready`], take
/// [`Raft::ready`], do what it says, and call [`Raft::advance`].
#[derive(Debug, Clone)]
pub struct Raft<C> {
    id: NodeId,
    /// The other members, sorted, so iteration (and thus output) is
    /// deterministic.
    peers: Vec<NodeId>,
    config: Config,
    rng: Xoshiro256PlusPlus,

    term: u64,
    vote: Option<NodeId>,
    log: Log<C>,
    commit: u64,
    applied: u64,

    role: Role,
    leader: Option<NodeId>,
    /// Ticks since the last election-timer reset (for a leader: since the
    /// last check-quorum).
    election_elapsed: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    /// Answers to this campaign (pre-vote or vote), this node's own included.
    votes: BTreeMap<NodeId, bool>,
    leadership: Leadership,

    messages: Vec<Outgoing<C>>,
    read_states: Vec<ReadState>,
    reported_hard: HardState,
    reported_soft: SoftState,
    handed: Option<Handed>,
}

impl<C: Clone> Raft<C> {
    /// A node `id` in a cluster with `peers` (its own id among them is
    /// ignored), starting from whatever `storage` holds: an empty storage
    /// starts a new node, a used one restarts it with its term, vote and
    /// log. Entries up to the stored commit index come out of the first
    /// [`Raft::ready`] to be applied again. `seed` drives the randomised
    /// election timeouts.
    ///
    /// # Panics
    /// If `config` is inconsistent (see [`Config`]).
    pub fn new<S: Storage<C> + ?Sized>(
        id: &str,
        peers: &[NodeId],
        config: Config,
        seed: u64,
        storage: &S,
    ) -> io::Result<Raft<C>> {
        config.validate();
        let hard = storage.hard_state();
        let log = Log::restore(storage.entries(1..storage.last_index() + 1)?)?;
        if hard.commit > log.last_index() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stored commit index is past the end of the stored log",
            ));
        }
        let mut peers: Vec<NodeId> = peers.iter().filter(|p| *p != id).cloned().collect();
        peers.sort();
        peers.dedup();
        let mut raft = Raft {
            id: id.to_owned(),
            peers,
            config,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            term: hard.term,
            vote: hard.vote.clone(),
            log,
            commit: hard.commit,
            applied: 0,
            role: Role::Follower,
            leader: None,
            election_elapsed: 0,
            election_timeout: 0,
            heartbeat_elapsed: 0,
            votes: BTreeMap::new(),
            leadership: Leadership::default(),
            messages: Vec::new(),
            read_states: Vec::new(),
            reported_soft: SoftState {
                role: Role::Follower,
                leader: None,
                term: hard.term,
            },
            reported_hard: hard,
            handed: None,
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    /// Advances logical time by one tick: followers and candidates count
    /// towards an election, leaders towards heartbeats and check-quorum.
    pub fn tick(&mut self) {
        self.assert_advanced();
        self.election_elapsed += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else if self.election_elapsed >= self.election_timeout {
            self.start_election();
        }
    }

    /// Handles a message from peer `from`. Messages from non-members are
    /// ignored, and so are messages with terms or indexes no cluster
    /// reaches (see [`Message::is_plausible`]).
    pub fn step(&mut self, from: &str, msg: Message<C>) {
        self.assert_advanced();
        if !self.peers.iter().any(|p| p == from)
            || !msg.is_plausible()
            || !self.observe_term(from, &msg)
        {
            return;
        }
        match msg {
            Message::PreVote(req) => self.handle_pre_vote(from, req),
            Message::PreVoteResp(resp) => self.handle_pre_vote_response(from, resp),
            Message::Vote(req) => self.handle_vote(from, req),
            Message::VoteResp(resp) => self.handle_vote_response(from, resp),
            Message::Append(req) => self.handle_append(from, req),
            Message::AppendOk(resp) => self.handle_append_ok(from, resp),
            Message::AppendReject(resp) => self.handle_append_reject(from, resp),
        }
    }

    /// Appends `cmd` to the log if this node leads, returning its index and
    /// term. It is committed when an entry with that index *and term* comes
    /// out in [`Ready::committed`]; another term there means it was lost.
    pub fn propose(&mut self, cmd: C) -> Result<(u64, u64), NotLeader> {
        self.assert_advanced();
        self.ensure_leader()?;
        let index = self.log.push(self.term, Some(cmd));
        // Sent with the next Ready, so proposals made in between share one
        // AppendEntries per follower.
        self.leadership.unsent_proposals = true;
        self.maybe_commit();
        Ok((index, self.term))
    }

    /// True when [`Raft::ready`] has something for the host.
    pub fn has_ready(&self) -> bool {
        self.soft_state() != self.reported_soft
            || self.hard_state_changed()
            || !self.log.unstable().is_empty()
            || !self.messages.is_empty()
            || self.commit > self.applied
            || !self.read_states.is_empty()
            || self.leadership.unsent_proposals
            || self.leadership.read_round_wanted
    }

    /// Hands the host what to persist, send, apply and serve (see [`Ready`]).
    /// The host must call [`Raft::advance`] when done, before anything else.
    pub fn ready(&mut self) -> Ready<C> {
        self.assert_advanced();
        if self.leadership.read_round_wanted {
            self.start_round(false);
            self.release_reads();
        }
        self.send_proposals();
        let hard = self.hard_state();
        let soft = self.soft_state();
        let ready = Ready {
            soft_state: (soft != self.reported_soft).then(|| soft.clone()),
            hard_state: self.hard_state_changed().then(|| hard.clone()),
            entries: self.log.unstable().to_vec(),
            messages: std::mem::take(&mut self.messages),
            committed: self.log.range(self.applied + 1, self.commit).to_vec(),
            read_states: std::mem::take(&mut self.read_states),
        };
        self.handed = Some(Handed {
            stable: self.log.last_index(),
            applied: self.commit,
            hard,
            soft,
        });
        ready
    }

    /// Confirms that the last [`Ready`] was persisted, sent and applied.
    ///
    /// # Panics
    /// If there is no Ready to confirm.
    pub fn advance(&mut self) {
        let handed = self.handed.take().expect("raft: advance() without ready()");
        self.log.mark_stable(handed.stable);
        self.applied = handed.applied;
        self.reported_hard = handed.hard;
        self.reported_soft = handed.soft;
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The other members of the cluster, sorted.
    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The vote cast in the current term.
    pub fn vote(&self) -> Option<&str> {
        self.vote.as_deref()
    }

    /// The leader of the current term, if known (this node when it leads).
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// The highest index known to be committed.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// The highest index handed to the host to apply and confirmed by
    /// [`Raft::advance`].
    pub fn last_applied(&self) -> u64 {
        self.applied
    }

    /// The whole log, durable or not.
    pub fn log(&self) -> &[Entry<C>] {
        self.log.all()
    }

    /// Index of the last log entry.
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }

    /// Term, vote and commit index as they should be persisted.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote.clone(),
            commit: self.commit,
        }
    }

    /// Role, leader and term.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader.clone(),
            term: self.term,
        }
    }

    /// The configuration this node runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether term or vote changed since the last Ready. A change of the
    /// commit index alone does not count: it is a hint a restarted node
    /// re-learns from the leader, not worth a sync on every commit.
    fn hard_state_changed(&self) -> bool {
        self.term != self.reported_hard.term || self.vote != self.reported_hard.vote
    }

    fn assert_advanced(&self) {
        assert!(
            self.handed.is_none(),
            "raft: call advance() to finish a ready() before anything else"
        );
    }

    fn ensure_leader(&self) -> Result<(), NotLeader> {
        match self.role {
            Role::Leader => Ok(()),
            _ => Err(NotLeader {
                leader_hint: self.leader.clone(),
            }),
        }
    }

    /// Votes needed to win, entries stored to commit: a strict majority.
    fn quorum(&self) -> usize {
        let members = self.peers.len() + 1;
        members / 2 + 1
    }

    fn send(&mut self, to: &str, msg: Message<C>) {
        self.messages.push(Outgoing {
            to: to.to_owned(),
            msg,
        });
    }

    /// Picks a new random election timeout and restarts the count, so
    /// candidates rarely time out together again.
    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let range = self.config.election_timeout_min..self.config.election_timeout_max;
        self.election_timeout = self.rng.random_range(range);
    }

    fn become_follower(&mut self, term: u64, leader: Option<&str>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader.map(str::to_owned);
        self.votes.clear();
        // Pending reads are dropped; the host sees the role change.
        self.leadership = Leadership::default();
        self.reset_election_timer();
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        self.votes.clear();
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let next = self.log.last_index() + 1;
        self.leadership = Leadership {
            progress: self
                .peers
                .iter()
                .map(|p| (p.clone(), Progress::new(next)))
                .collect(),
            term_start: next,
            ..Leadership::default()
        };
        // An entry of our own term lets us commit everything before it
        // (entries of older terms are never committed by counting, §5.4.2)
        // and serve reads.
        self.log.push(self.term, None);
        self.send_heartbeats();
        self.maybe_commit();
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_interval {
            self.heartbeat_elapsed = 0;
            self.send_heartbeats();
        }
        if self.election_elapsed >= self.config.election_timeout_min {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.quorum_active() {
                self.become_follower(self.term, None);
            }
        }
    }

    /// Whether a quorum (this node included) was heard from since the last
    /// check; starts the next period.
    fn quorum_active(&mut self) -> bool {
        let mut active = 1;
        for progress in self.leadership.progress.values_mut() {
            active += usize::from(std::mem::take(&mut progress.active));
        }
        active >= self.quorum()
    }
}
