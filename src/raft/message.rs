//! What Raft nodes keep and what they say to each other. Every type here is
//! plain data with a compact JSON form, so it can travel inside a Maelstrom
//! message body or sit in a storage record.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::NodeId;

/// One log entry: its position, the term of the leader that created it, and
/// the command (`None` for the no-op a new leader appends).
///
/// JSON: `{"index":7,"term":3,"cmd":...}`; a no-op has no `cmd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>", serialize = "C: Serialize"))]
pub struct Entry<C> {
    /// Position in the log, from 1.
    pub index: u64,
    /// Term in which a leader appended it.
    pub term: u64,
    /// The host's command, or `None` for a leader's no-op.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub cmd: Option<C>,
}

/// Reads a field that is present as `Some`, even when the command itself is
/// JSON `null` (plain `Option` would turn that into a no-op).
fn present<'de, D: Deserializer<'de>, C: Deserialize<'de>>(d: D) -> Result<Option<C>, D::Error> {
    C::deserialize(d).map(Some)
}

/// The state a node must persist before it sends anything: current term,
/// the vote cast in it, and the commit index (a hint that saves re-learning
/// it after a restart; entries up to it are re-applied on start). The
/// stored commit index is the one of the last term or vote change, so it
/// may lag: a restarted node learns the rest from the leader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// Whom this node voted for in `term`, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote: Option<NodeId>,
    /// Highest index known to be committed.
    pub commit: u64,
}

/// What a node is doing in the current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks whether it could win an election, without changing its term.
    PreCandidate,
    /// Campaigns for votes in a new term.
    Candidate,
    /// Leads the current term.
    Leader,
}

/// Volatile facts a host reacts to: the role, the known leader and the term.
/// When a leader's soft state changes it has stopped leading that term: its
/// pending reads were dropped, and its pending proposals may or may not
/// still commit (watch the terms in [`Ready::committed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftState {
    /// This node's role.
    pub role: Role,
    /// The leader this node knows of in `term`, if any.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
}

/// A linearizable read that may be served once the host has applied the
/// log up to `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The id the host passed to [`super::Raft::read_index`].
    pub request_id: u64,
    /// The commit index the read must observe.
    pub index: u64,
}

/// Returned by calls only a leader can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this node knows of, to retry there.
    pub leader_hint: Option<NodeId>,
}

impl fmt::Display for NotLeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.leader_hint {
            Some(leader) => write!(f, "not the leader; try {leader}"),
            None => f.write_str("not the leader; no leader known"),
        }
    }
}

impl std::error::Error for NotLeader {}

/// A Raft message between nodes. The JSON form is an object tagged by
/// `type`, e.g. `{"type":"vote","term":4,"last_index":9,"last_term":3}`, so a
/// host can carry it as a Maelstrom body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[serde(bound(deserialize = "C: Deserialize<'de>", serialize = "C: Serialize"))]
pub enum Message<C> {
    /// Would you vote for me in `term`? (Asked without changing terms.)
    PreVote(VoteRequest),
    /// Answer to a [`Message::PreVote`].
    PreVoteResp(VoteResponse),
    /// Vote for me in `term`.
    Vote(VoteRequest),
    /// Answer to a [`Message::Vote`].
    VoteResp(VoteResponse),
    /// AppendEntries, also used as the heartbeat.
    Append(Append<C>),
    /// The follower's log now matches the leader's up to `index`.
    AppendOk(AppendOk),
    /// The follower's log does not contain the entry before the sent ones.
    AppendReject(AppendReject),
}

/// Terms and indexes from here on are never reached by a working cluster
/// (a node would need 2^62 elections or entries): only a broken or
/// malicious peer sends them, and [`super::Raft::step`] drops messages that
/// carry one, so that a node's `term + 1` or `index + 1` cannot overflow.
pub const IMPLAUSIBLE: u64 = 1 << 62;

impl<C> Message<C> {
    /// Whether every term and index in the message is below
    /// [`IMPLAUSIBLE`].
    pub fn is_plausible(&self) -> bool {
        let numbers: Vec<u64> = match self {
            Message::PreVote(m) | Message::Vote(m) => vec![m.term, m.last_index, m.last_term],
            Message::PreVoteResp(m) | Message::VoteResp(m) => vec![m.term],
            Message::Append(m) => {
                let entries = m.entries.iter().flat_map(|e| [e.index, e.term]);
                [m.term, m.prev_index, m.prev_term, m.commit]
                    .into_iter()
                    .chain(entries)
                    .collect()
            }
            Message::AppendOk(m) => vec![m.term, m.index],
            Message::AppendReject(m) => {
                vec![m.term, m.index, m.hint_index, m.hint_term.unwrap_or(0)]
            }
        };
        numbers.iter().all(|n| *n < IMPLAUSIBLE)
    }

    /// The sender's term (for a pre-vote request, the term it would run in).
    pub fn term(&self) -> u64 {
        match self {
            Message::PreVote(m) | Message::Vote(m) => m.term,
            Message::PreVoteResp(m) | Message::VoteResp(m) => m.term,
            Message::Append(m) => m.term,
            Message::AppendOk(m) => m.term,
            Message::AppendReject(m) => m.term,
        }
    }
}

/// A request for a vote or a pre-vote, with the candidate's log position
/// so voters can refuse a candidate whose log is behind theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The term the candidate runs in.
    pub term: u64,
    /// Index of the candidate's last entry.
    pub last_index: u64,
    /// Term of the candidate's last entry.
    pub last_term: u64,
}

/// A voter's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    /// The voter's term, or the requested term for a granted pre-vote.
    pub term: u64,
    /// Whether the vote was given.
    pub granted: bool,
}

/// AppendEntries: entries following `prev_index`, which the follower must
/// hold with `prev_term` to accept them.
///
/// JSON: `{"type":"append","term":3,"prev_index":6,"prev_term":2,
/// "entries":[...],"commit":5,"round":12}`; a heartbeat omits `entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>", serialize = "C: Serialize"))]
pub struct Append<C> {
    /// The leader's term.
    pub term: u64,
    /// Index of the entry just before `entries`.
    pub prev_index: u64,
    /// Term of that entry.
    pub prev_term: u64,
    /// Entries `prev_index + 1 ..`, possibly none.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Entry<C>>,
    /// The leader's commit index.
    pub commit: u64,
    /// The leader's heartbeat round, echoed back to confirm leadership.
    pub round: u64,
}

impl<C> Append<C> {
    /// True when the entries are numbered consecutively after `prev_index`
    /// and none is newer than the message.
    pub fn is_well_formed(&self) -> bool {
        self.prev_term <= self.term
            && self
                .entries
                .iter()
                .zip(self.prev_index + 1..)
                .all(|(entry, index)| entry.index == index && entry.term <= self.term)
    }
}

/// A successful AppendEntries answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOk {
    /// The follower's term.
    pub term: u64,
    /// The last index known to match the leader's log: `prev_index` plus the
    /// number of entries sent (not the follower's last index, which may hold
    /// a stale suffix).
    pub index: u64,
    /// The round of the request.
    pub round: u64,
}

/// A failed AppendEntries answer, with hints so the leader can skip a whole
/// divergent term at once instead of backing up one entry at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReject {
    /// The follower's term.
    pub term: u64,
    /// The `prev_index` that did not match.
    pub index: u64,
    /// Where the leader should try next: the follower's last index plus one
    /// when its log is too short, else the first index of `hint_term`.
    pub hint_index: u64,
    /// The term of the follower's entry at `index`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint_term: Option<u64>,
    /// The round of the request.
    pub round: u64,
}

/// A message to send: the destination and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<C> {
    /// The peer to send to.
    pub to: NodeId,
    /// What to send.
    pub msg: Message<C>,
}

/// Everything a host must do after stepping the node, in this order:
/// persist `entries` and `hard_state`, send `messages`, apply `committed`,
/// then serve `read_states`; finally call [`super::Raft::advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready<C> {
    /// Role, leader or term changed since the last `Ready`.
    pub soft_state: Option<SoftState>,
    /// Term or vote changed: persist it (after `entries`). It carries the
    /// current commit index too, but a new commit index alone does not
    /// produce one: that index is only a hint (see [`HardState`]), and
    /// storing it on every commit would cost a sync per commit.
    pub hard_state: Option<HardState>,
    /// Entries to persist, replacing every stored entry from
    /// `entries[0].index` on.
    pub entries: Vec<Entry<C>>,
    /// Messages to send once `entries` and `hard_state` are durable.
    pub messages: Vec<Outgoing<C>>,
    /// Newly committed entries to apply, in order, exactly once. No-ops
    /// (`cmd: None`) are included so the host sees the term at every index.
    pub committed: Vec<Entry<C>>,
    /// Reads that may be served once `committed` has been applied.
    pub read_states: Vec<ReadState>,
}
