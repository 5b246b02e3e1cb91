//! One node at a time, one rule at a time: the claims of the Raft paper
//! (and of the thesis for pre-vote, check-quorum and ReadIndex), each
//! checked by feeding a node messages and reading what it answers.

use serde_json::json;

use crate::protocol::NodeId;
use crate::raft::{
    Append, AppendOk, AppendReject, Config, Entry, HardState, IMPLAUSIBLE, MemStorage, Message,
    NotLeader, Outgoing, Raft, ReadState, Role, Storage, VoteRequest, VoteResponse,
};

type Node = Raft<u64>;

/// Plain Raft: no pre-vote, no check-quorum; small batches.
fn config() -> Config {
    Config {
        election_timeout_min: 10,
        election_timeout_max: 20,
        heartbeat_interval: 2,
        max_append_entries: 4,
        pre_vote: false,
        check_quorum: false,
    }
}

fn ids(n: usize) -> Vec<NodeId> {
    (0..n).map(|i| format!("n{i}")).collect()
}

/// Node `n0` of an `n`-node cluster whose storage holds entries of `terms`
/// (commands equal to their index) and the hard state `term`.
fn restored(n: usize, terms: &[u64], term: u64, config: Config) -> Node {
    let mut storage = MemStorage::new();
    storage.append(&entries(1, terms)).unwrap();
    storage
        .set_hard_state(&HardState {
            term,
            vote: None,
            commit: 0,
        })
        .unwrap();
    Raft::new("n0", &ids(n), config, 1, &storage).unwrap()
}

fn node(n: usize) -> Node {
    restored(n, &[], 0, config())
}

/// Entries numbered from `first`, one per term in `terms`.
fn entries(first: u64, terms: &[u64]) -> Vec<Entry<u64>> {
    terms
        .iter()
        .zip(first..)
        .map(|(&term, index)| Entry {
            index,
            term,
            cmd: Some(index),
        })
        .collect()
}

fn terms(node: &Node) -> Vec<u64> {
    node.log().iter().map(|e| e.term).collect()
}

/// Takes the pending Ready, returning its messages.
fn sent(node: &mut Node) -> Vec<Outgoing<u64>> {
    if !node.has_ready() {
        return Vec::new();
    }
    let ready = node.ready();
    node.advance();
    ready.messages
}

fn tick_until(node: &mut Node, role: Role) -> u64 {
    for ticks in 1..1000 {
        node.tick();
        if node.role() == role {
            return ticks;
        }
    }
    panic!("node never became {role:?}");
}

/// Elects `n0` with a vote from `n1` (pre-vote first, if configured).
fn elect(node: &mut Node) {
    if node.config().pre_vote {
        tick_until(node, Role::PreCandidate);
        let term = node.term() + 1;
        node.step(
            "n1",
            Message::PreVoteResp(VoteResponse {
                term,
                granted: true,
            }),
        );
    } else {
        tick_until(node, Role::Candidate);
    }
    let term = node.term();
    node.step(
        "n1",
        Message::VoteResp(VoteResponse {
            term,
            granted: true,
        }),
    );
    assert_eq!(node.role(), Role::Leader);
}

/// A leader of a new 3-node cluster whose no-op both followers have
/// acknowledged.
fn leader() -> Node {
    let mut node = node(3);
    elect(&mut node);
    ack(&mut node, "n1", 1, 1);
    ack(&mut node, "n2", 1, 1);
    assert_eq!(node.commit_index(), 1);
    sent(&mut node);
    node
}

fn ack(node: &mut Node, from: &str, index: u64, round: u64) {
    let term = node.term();
    node.step(from, Message::AppendOk(AppendOk { term, index, round }));
}

fn append(term: u64, prev: (u64, u64), entries: Vec<Entry<u64>>, commit: u64) -> Message<u64> {
    Message::Append(Append {
        term,
        prev_index: prev.0,
        prev_term: prev.1,
        entries,
        commit,
        round: 1,
    })
}

fn vote(term: u64, last_index: u64, last_term: u64) -> Message<u64> {
    Message::Vote(VoteRequest {
        term,
        last_index,
        last_term,
    })
}

fn only(mut out: Vec<Outgoing<u64>>) -> Message<u64> {
    assert_eq!(out.len(), 1, "expected one message, got {out:?}");
    out.pop().unwrap().msg
}

fn appends_to(out: &[Outgoing<u64>], to: &str) -> Vec<Append<u64>> {
    out.iter()
        .filter(|o| o.to == to)
        .filter_map(|o| match &o.msg {
            Message::Append(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn granted(out: Vec<Outgoing<u64>>) -> bool {
    match only(out) {
        Message::VoteResp(r) | Message::PreVoteResp(r) => r.granted,
        other => panic!("expected a vote response, got {other:?}"),
    }
}

// §5.1: terms.

#[test]
fn a_follower_adopts_a_higher_term_and_forgets_its_vote() {
    let mut node = node(3);
    node.step("n1", vote(2, 0, 0));
    assert_eq!((node.term(), node.vote()), (2, Some("n1")));
    node.step("n2", append(3, (0, 0), vec![], 0));
    assert_eq!(
        (node.term(), node.vote(), node.leader()),
        (3, None, Some("n2"))
    );
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn candidates_and_leaders_step_down_on_a_higher_term() {
    let mut node = node(3);
    tick_until(&mut node, Role::Candidate);
    node.step(
        "n1",
        Message::VoteResp(VoteResponse {
            term: 4,
            granted: false,
        }),
    );
    assert_eq!((node.role(), node.term()), (Role::Follower, 4));

    let mut node = leader();
    let term = node.term();
    node.step("n2", vote(term + 1, 0, 0));
    assert_eq!((node.role(), node.term()), (Role::Follower, term + 1));
}

#[test]
fn messages_from_older_terms_are_answered_with_the_current_term() {
    let mut node = restored(3, &[], 3, config());
    node.step("n1", append(2, (5, 2), vec![], 0));
    match only(sent(&mut node)) {
        Message::AppendReject(r) => assert_eq!((r.term, r.index), (3, 5)),
        other => panic!("unexpected {other:?}"),
    }
    node.step("n1", vote(2, 9, 2));
    assert_eq!(
        only(sent(&mut node)),
        Message::VoteResp(VoteResponse {
            term: 3,
            granted: false
        })
    );
    // Old answers are dropped without a word.
    ack(&mut node, "n1", 1, 1);
    node.step(
        "n1",
        Message::AppendOk(AppendOk {
            term: 2,
            index: 1,
            round: 1,
        }),
    );
    assert!(sent(&mut node).is_empty());
    assert_eq!((node.term(), node.role()), (3, Role::Follower));
}

// §5.2: elections.

#[test]
fn a_follower_campaigns_in_a_new_term_after_its_election_timeout() {
    let mut node = restored(3, &[1, 1], 1, config());
    let ticks = tick_until(&mut node, Role::Candidate);
    assert!((10..20).contains(&ticks), "campaigned after {ticks} ticks");
    assert_eq!((node.term(), node.vote()), (2, Some("n0")));
    let out = sent(&mut node);
    assert_eq!(out.len(), 2);
    for o in out {
        assert_eq!(o.msg, vote(2, 2, 1));
    }
}

#[test]
fn election_timeouts_are_randomised_within_the_range() {
    let timeouts: std::collections::BTreeSet<u64> = (0..40)
        .map(|seed| {
            let storage = MemStorage::new();
            let mut node = Raft::<u64>::new("n0", &ids(3), config(), seed, &storage).unwrap();
            tick_until(&mut node, Role::Candidate)
        })
        .collect();
    assert!(
        timeouts.iter().all(|t| (10..20).contains(t)),
        "{timeouts:?}"
    );
    assert!(timeouts.len() >= 5, "too little spread: {timeouts:?}");
}

#[test]
fn a_candidate_restarts_its_election_when_it_times_out() {
    let mut node = node(3);
    tick_until(&mut node, Role::Candidate);
    assert_eq!(node.term(), 1);
    sent(&mut node);
    // Timeouts are below 20 ticks, so 19 make exactly one more election.
    for _ in 0..19 {
        node.tick();
    }
    assert_eq!((node.role(), node.term()), (Role::Candidate, 2));
}

#[test]
fn a_node_votes_for_one_candidate_per_term() {
    let mut node = node(3);
    node.step("n1", vote(1, 0, 0));
    assert!(granted(sent(&mut node)));
    node.step("n2", vote(1, 0, 0));
    assert!(!granted(sent(&mut node)));
    // Asking again (a lost answer) gets the same answer.
    node.step("n1", vote(1, 0, 0));
    assert!(granted(sent(&mut node)));
}

#[test]
fn votes_go_only_to_candidates_whose_log_is_at_least_as_up_to_date() {
    // §5.4.1: compare last terms, then lengths.
    for (last_index, last_term, expected) in [
        (3, 1, false),
        (2, 2, false),
        (3, 2, true),
        (1, 3, true),
        (9, 2, true),
    ] {
        let mut node = restored(3, &[1, 1, 2], 2, config());
        node.step("n1", vote(3, last_index, last_term));
        assert_eq!(
            granted(sent(&mut node)),
            expected,
            "({last_index}, {last_term})"
        );
    }
}

#[test]
fn a_candidate_with_a_majority_leads_and_appends_a_no_op() {
    let mut node = restored(5, &[1], 1, config());
    tick_until(&mut node, Role::Candidate);
    node.step(
        "n1",
        Message::VoteResp(VoteResponse {
            term: 2,
            granted: true,
        }),
    );
    assert_eq!(node.role(), Role::Candidate);
    node.step(
        "n3",
        Message::VoteResp(VoteResponse {
            term: 2,
            granted: true,
        }),
    );
    assert_eq!((node.role(), node.leader()), (Role::Leader, Some("n0")));
    assert_eq!(
        node.log()[1],
        Entry {
            index: 2,
            term: 2,
            cmd: None
        }
    );
    let out = sent(&mut node);
    for peer in ["n1", "n2", "n3", "n4"] {
        let appends = appends_to(&out, peer);
        assert_eq!(appends.len(), 1);
        assert_eq!((appends[0].prev_index, appends[0].prev_term), (1, 1));
        assert_eq!(appends[0].entries.len(), 1);
    }
}

#[test]
fn a_candidate_steps_down_when_the_leader_of_its_term_appears() {
    let mut node = node(3);
    tick_until(&mut node, Role::Candidate);
    node.step("n2", append(1, (0, 0), vec![], 0));
    assert_eq!(
        (node.role(), node.term(), node.leader()),
        (Role::Follower, 1, Some("n2"))
    );
}

#[test]
fn a_candidate_refused_by_a_majority_steps_down() {
    let mut node = node(3);
    tick_until(&mut node, Role::Candidate);
    let refusal = VoteResponse {
        term: 1,
        granted: false,
    };
    node.step("n1", Message::VoteResp(refusal.clone()));
    node.step("n2", Message::VoteResp(refusal));
    assert_eq!((node.role(), node.term()), (Role::Follower, 1));
}

// §5.3: log replication.

#[test]
fn a_follower_rejects_an_append_whose_previous_entry_differs() {
    let mut node = restored(3, &[1, 1, 2, 2], 3, config());
    // Too short: the hint is our end.
    node.step("n1", append(3, (6, 3), vec![], 0));
    let expected = AppendReject {
        term: 3,
        index: 6,
        hint_index: 5,
        hint_term: None,
        round: 1,
    };
    assert_eq!(only(sent(&mut node)), Message::AppendReject(expected));
    // Wrong term: the hint names our term there and where it starts.
    node.step("n1", append(3, (4, 3), vec![], 0));
    match only(sent(&mut node)) {
        Message::AppendReject(r) => assert_eq!((r.hint_term, r.hint_index), (Some(2), 3)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(terms(&node), [1, 1, 2, 2]);
}

#[test]
fn an_append_cuts_only_a_conflicting_suffix() {
    let mut node = restored(3, &[1, 1, 1, 1], 2, config());
    // A delayed copy of an old AppendEntries: everything matches, nothing
    // is cut, and only what it covered is acknowledged.
    node.step("n1", append(2, (1, 1), entries(2, &[1]), 0));
    assert_eq!(terms(&node), [1, 1, 1, 1]);
    assert_eq!(
        only(sent(&mut node)),
        Message::AppendOk(AppendOk {
            term: 2,
            index: 2,
            round: 1
        })
    );
    // A real conflict at 3 replaces the suffix from there.
    node.step("n1", append(2, (1, 1), entries(2, &[1, 2]), 0));
    assert_eq!(terms(&node), [1, 1, 2]);
    let ready = node.ready();
    node.advance();
    assert_eq!(ready.entries, entries(3, &[2]));
}

#[test]
fn a_follower_commits_no_further_than_what_it_was_sent() {
    let mut node = restored(3, &[1, 1, 1], 1, config());
    node.step("n1", append(1, (1, 1), vec![], 3));
    assert_eq!(node.commit_index(), 1);
    node.step("n1", append(1, (3, 1), vec![], 3));
    assert_eq!(node.commit_index(), 3);
    // Commit never goes back.
    node.step("n1", append(1, (3, 1), vec![], 2));
    assert_eq!(node.commit_index(), 3);
    let ready = node.ready();
    assert_eq!(ready.committed, entries(1, &[1, 1, 1]));
}

#[test]
fn a_leader_commits_what_a_majority_stores() {
    let mut node = leader();
    node.propose(10).unwrap();
    node.propose(11).unwrap();
    sent(&mut node);
    assert_eq!(node.commit_index(), 1);
    ack(&mut node, "n2", 3, 1);
    assert_eq!(node.commit_index(), 3);
    let ready = node.ready();
    let applied: Vec<_> = ready.committed.iter().map(|e| e.cmd).collect();
    assert_eq!(applied, [Some(10), Some(11)]);
}

#[test]
fn an_older_terms_entry_commits_only_with_an_entry_of_the_current_term() {
    // Figure 8: the entry at 2 (term 2) is on a majority once n1 has it, but
    // counting replicas of an old entry is unsafe.
    let mut node = restored(3, &[1, 2], 2, config());
    elect(&mut node);
    assert_eq!(terms(&node), [1, 2, 3]);
    ack(&mut node, "n1", 2, 1);
    assert_eq!(node.commit_index(), 0);
    ack(&mut node, "n1", 3, 1);
    assert_eq!(node.commit_index(), 3);
}

#[test]
fn stale_answers_do_not_move_a_leader_back() {
    let mut node = leader();
    for cmd in 0..3 {
        node.propose(cmd).unwrap();
    }
    sent(&mut node);
    ack(&mut node, "n1", 4, 2);
    let commit = node.commit_index();
    assert_eq!(commit, 4);
    // A reject of an index n1 has since matched, a delayed AppendOk and an
    // answer from an older term change nothing and send nothing.
    let reject = AppendReject {
        term: 1,
        index: 1,
        hint_index: 1,
        hint_term: None,
        round: 1,
    };
    node.step("n1", Message::AppendReject(reject));
    ack(&mut node, "n1", 2, 1);
    assert!(sent(&mut node).is_empty());
    assert_eq!(node.commit_index(), commit);
    // The first heartbeat skips n1, which just got entries; the next one
    // goes out at n1's match.
    for _ in 0..4 {
        node.tick();
    }
    let heartbeat = appends_to(&sent(&mut node), "n1");
    assert_eq!(heartbeat[0].prev_index, 4);
}

#[test]
fn a_leader_skips_a_divergent_term_in_one_round_trip() {
    // The leader holds terms 1 and 4, the follower has 2s from index 2 on.
    let mut node = restored(3, &[1, 4, 4, 4, 4], 4, config());
    elect(&mut node);
    sent(&mut node);
    let reject = AppendReject {
        term: 5,
        index: 5,
        hint_index: 2,
        hint_term: Some(2),
        round: 1,
    };
    node.step("n1", Message::AppendReject(reject));
    let retry = appends_to(&sent(&mut node), "n1");
    assert_eq!((retry[0].prev_index, retry[0].prev_term), (1, 1));
    // A follower holding term 1 at 5 resumes after the leader's last 1.
    let reject = AppendReject {
        term: 5,
        index: 1,
        hint_index: 2,
        hint_term: Some(1),
        round: 1,
    };
    node.step(
        "n2",
        Message::AppendReject(AppendReject { index: 5, ..reject }),
    );
    let retry = appends_to(&sent(&mut node), "n2");
    assert_eq!(retry[0].prev_index, 1);
}

#[test]
fn a_far_behind_follower_catches_up_in_capped_batches() {
    let mut node = restored(3, &[1; 10], 1, config());
    elect(&mut node);
    sent(&mut node);
    // n1 has nothing: it hints its end and gets the first batch of four.
    let reject = AppendReject {
        term: 2,
        index: 10,
        hint_index: 1,
        hint_term: None,
        round: 1,
    };
    node.step("n1", Message::AppendReject(reject));
    let batch = &appends_to(&sent(&mut node), "n1")[0];
    assert_eq!((batch.prev_index, batch.entries.len()), (0, 4));
    // Each answer brings the next batch, until n1 has it all.
    let mut matched = 4;
    while matched < 11 {
        ack(&mut node, "n1", matched, 1);
        let batch = &appends_to(&sent(&mut node), "n1")[0];
        assert_eq!(batch.prev_index, matched);
        matched += batch.entries.len() as u64;
    }
    ack(&mut node, "n1", 11, 1);
    assert!(sent(&mut node).is_empty());
    assert_eq!(node.commit_index(), 11);
}

#[test]
fn proposals_between_readies_travel_in_one_append() {
    let mut node = leader();
    for cmd in 0..3 {
        node.propose(cmd).unwrap();
    }
    let out = sent(&mut node);
    for peer in ["n1", "n2"] {
        let appends = appends_to(&out, peer);
        let lens: Vec<usize> = appends.iter().map(|a| a.entries.len()).collect();
        assert_eq!(lens, [3], "to {peer}");
    }
}

#[test]
fn proposals_to_a_follower_fail_with_a_hint() {
    let mut node = node(3);
    assert_eq!(node.propose(1), Err(NotLeader { leader_hint: None }));
    node.step("n2", append(1, (0, 0), vec![], 0));
    let hint = Some("n2".to_string());
    assert_eq!(
        node.propose(1),
        Err(NotLeader {
            leader_hint: hint.clone()
        })
    );
    assert_eq!(node.read_index(1), Err(NotLeader { leader_hint: hint }));
}

#[test]
fn a_single_node_elects_itself_and_commits_alone() {
    let mut node = node(1);
    tick_until(&mut node, Role::Leader);
    assert_eq!(node.propose(5), Ok((2, 1)));
    node.read_index(9).unwrap();
    let ready = node.ready();
    assert_eq!(ready.committed.last().unwrap().cmd, Some(5));
    assert_eq!(
        ready.read_states,
        [ReadState {
            request_id: 9,
            index: 2
        }]
    );
}

// Pre-vote (thesis §9.6).

fn pre_vote_config() -> Config {
    Config {
        pre_vote: true,
        ..config()
    }
}

#[test]
fn a_pre_candidate_asks_for_the_next_term_without_entering_it() {
    let mut node = restored(3, &[1], 1, pre_vote_config());
    tick_until(&mut node, Role::PreCandidate);
    assert_eq!((node.term(), node.vote()), (1, None));
    for o in sent(&mut node) {
        let request = VoteRequest {
            term: 2,
            last_index: 1,
            last_term: 1,
        };
        assert_eq!(o.msg, Message::PreVote(request));
    }
    // Refused by a majority, it stays a follower in its term.
    let refusal = VoteResponse {
        term: 1,
        granted: false,
    };
    node.step("n1", Message::PreVoteResp(refusal.clone()));
    node.step("n2", Message::PreVoteResp(refusal));
    assert_eq!((node.role(), node.term()), (Role::Follower, 1));
}

#[test]
fn winning_a_pre_vote_starts_the_real_election() {
    let mut node = restored(3, &[1], 1, pre_vote_config());
    tick_until(&mut node, Role::PreCandidate);
    node.step(
        "n2",
        Message::PreVoteResp(VoteResponse {
            term: 2,
            granted: true,
        }),
    );
    assert_eq!(
        (node.role(), node.term(), node.vote()),
        (Role::Candidate, 2, Some("n0"))
    );
}

#[test]
fn a_pre_vote_changes_no_voters_term_and_is_refused_while_a_leader_is_heard() {
    let mut node = restored(3, &[1], 1, pre_vote_config());
    let pre_vote = |term, last_index| {
        Message::PreVote(VoteRequest {
            term,
            last_index,
            last_term: 1,
        })
    };
    node.step("n1", pre_vote(5, 1));
    assert!(granted(sent(&mut node)));
    assert_eq!((node.term(), node.vote()), (1, None));
    // A behind log is refused.
    node.step("n1", pre_vote(5, 0));
    assert!(!granted(sent(&mut node)));
    // A follower that just heard from its leader refuses, until the
    // leader has been silent for an election timeout.
    node.step("n2", append(1, (1, 1), vec![], 0));
    sent(&mut node);
    node.step("n1", pre_vote(5, 1));
    assert!(!granted(sent(&mut node)));
    for _ in 0..10 {
        node.tick();
    }
    sent(&mut node);
    node.step("n1", pre_vote(5, 1));
    assert!(granted(sent(&mut node)));
}

// Check-quorum and leader stickiness (thesis §6.2, §4.2.3).

fn check_quorum_config() -> Config {
    Config {
        check_quorum: true,
        ..config()
    }
}

#[test]
fn a_leader_that_hears_from_no_quorum_steps_down() {
    let mut node = restored(3, &[], 0, check_quorum_config());
    elect(&mut node);
    // Hearing from n1 once per election timeout keeps it leading.
    for _ in 0..3 {
        ack(&mut node, "n1", 1, 1);
        for _ in 0..10 {
            node.tick();
        }
        assert_eq!(node.role(), Role::Leader);
    }
    for _ in 0..10 {
        node.tick();
    }
    assert_eq!(
        (node.role(), node.term(), node.leader()),
        (Role::Follower, 1, None)
    );
}

#[test]
fn a_follower_that_hears_its_leader_ignores_vote_requests() {
    let mut node = restored(3, &[], 0, check_quorum_config());
    node.step("n1", append(2, (0, 0), vec![], 0));
    sent(&mut node);
    // A node back from a partition with an inflated term cannot depose n1.
    node.step("n2", vote(9, 5, 1));
    assert!(sent(&mut node).is_empty());
    assert_eq!((node.term(), node.leader()), (2, Some("n1")));
    for _ in 0..10 {
        node.tick();
    }
    sent(&mut node);
    node.step("n2", vote(9, 5, 1));
    assert!(granted(sent(&mut node)));
    assert_eq!(node.term(), 9);
}

// ReadIndex (thesis §6.4).

#[test]
fn a_read_waits_for_a_quorum_to_answer_a_round_started_after_it() {
    let mut node = leader();
    node.read_index(7).unwrap();
    let out = sent(&mut node);
    let round = appends_to(&out, "n1")[0].round;
    assert!(round > 1);
    // An answer to an earlier round proves nothing about now.
    ack(&mut node, "n1", 1, round - 1);
    assert!(node.ready().read_states.is_empty());
    node.advance();
    // A reject in the round still shows n1 follows us.
    let reject = AppendReject {
        term: 1,
        index: 1,
        hint_index: 2,
        hint_term: None,
        round,
    };
    node.step("n2", Message::AppendReject(reject));
    assert_eq!(
        node.ready().read_states,
        [ReadState {
            request_id: 7,
            index: 1
        }]
    );
}

#[test]
fn reads_asked_for_between_two_readies_share_one_round() {
    let mut node = leader();
    node.read_index(1).unwrap();
    node.read_index(2).unwrap();
    let out = sent(&mut node);
    let to_n1 = appends_to(&out, "n1");
    assert_eq!(to_n1.len(), 1, "one round, one message per follower");
    ack(&mut node, "n1", 1, to_n1[0].round);
    let ready = node.ready();
    let ids: Vec<u64> = ready.read_states.iter().map(|r| r.request_id).collect();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn read_rounds_do_not_make_a_streaming_follower_look_stalled() {
    let mut node = leader();
    node.propose(7).unwrap();
    sent(&mut node);
    // Many read rounds while entry 2 is still unanswered: only heartbeat
    // intervals measure a stall, so n1 keeps streaming.
    for id in 0..5 {
        node.read_index(id).unwrap();
        sent(&mut node);
    }
    node.propose(8).unwrap();
    let out = sent(&mut node);
    let to_n1 = appends_to(&out, "n1");
    assert!(
        to_n1
            .iter()
            .any(|a| a.prev_index == 2 && a.entries.len() == 1),
        "entry 3 goes out right behind entry 2: {to_n1:?}"
    );
}

#[test]
fn a_follower_that_stopped_answering_gets_probes_without_entries() {
    let mut node = leader();
    for cmd in 0..3 {
        node.propose(cmd).unwrap();
        sent(&mut node);
    }
    // n1 answers nothing; n2 keeps up.
    let mut to_n1 = Vec::new();
    for tick in 0..20 {
        node.propose(10 + tick).unwrap();
        node.tick();
        let last = node.last_index();
        ack(&mut node, "n2", last, 1);
        to_n1.extend(appends_to(&sent(&mut node), "n1"));
    }
    // Once a heartbeat interval went unanswered, only empty probes, one
    // per heartbeat, although proposals keep coming.
    let quiet = to_n1.iter().rev().take_while(|a| a.entries.is_empty());
    assert!(quiet.count() >= 8, "{to_n1:?}");
    assert!(to_n1.len() <= 14, "{to_n1:?}");
    // An answer brings the entries at once.
    let probe = to_n1.last().unwrap().clone();
    ack(&mut node, "n1", probe.prev_index, probe.round);
    let out = appends_to(&sent(&mut node), "n1");
    assert!(out.iter().any(|a| !a.entries.is_empty()), "{out:?}");
}

#[test]
fn heartbeats_skip_followers_that_just_got_entries() {
    let mut node = leader();
    let mut empty = 0;
    for cmd in 0..20 {
        node.propose(cmd).unwrap();
        node.tick();
        let out = sent(&mut node);
        let last = node.last_index();
        ack(&mut node, "n1", last, 1);
        ack(&mut node, "n2", last, 1);
        empty += appends_to(&out, "n1")
            .iter()
            .filter(|a| a.entries.is_empty())
            .count();
    }
    assert_eq!(empty, 0, "entries went out at every tick");
    // Idle, heartbeats go out again.
    for _ in 0..4 {
        node.tick();
    }
    assert!(!appends_to(&sent(&mut node), "n1").is_empty());
}

#[test]
fn a_read_waits_for_the_first_commit_of_the_term() {
    // A new leader whose commit index still lags behind what the old one
    // committed must not serve reads from it.
    let mut node = restored(3, &[1, 1], 1, config());
    elect(&mut node);
    node.read_index(3).unwrap();
    let round = appends_to(&sent(&mut node), "n1").last().unwrap().round;
    ack(&mut node, "n1", 0, round);
    assert!(node.ready().read_states.is_empty());
    node.advance();
    ack(&mut node, "n1", 3, round);
    let ready = node.ready();
    assert_eq!(
        ready.read_states,
        [ReadState {
            request_id: 3,
            index: 3
        }]
    );
    assert_eq!(ready.committed.len(), 3);
}

#[test]
fn an_isolated_leader_never_serves_a_read_and_drops_it_on_stepping_down() {
    let mut node = restored(3, &[], 0, check_quorum_config());
    elect(&mut node);
    ack(&mut node, "n1", 1, 1);
    node.read_index(1).unwrap();
    for _ in 0..30 {
        node.tick();
        let ready = node.ready();
        node.advance();
        assert!(ready.read_states.is_empty());
    }
    assert_eq!(node.role(), Role::Follower);
    ack(&mut node, "n1", 1, 99);
    assert!(node.ready().read_states.is_empty());
}

// The host interface.

#[test]
fn a_restarted_node_keeps_term_vote_and_log_and_reapplies_committed_entries() {
    let mut storage = MemStorage::new();
    let mut node = Raft::new("n0", &ids(3), config(), 1, &storage).unwrap();
    elect(&mut node);
    ack(&mut node, "n1", 1, 1);
    node.propose(42).unwrap();
    ack(&mut node, "n1", 2, 1);
    let ready = node.ready();
    storage.persist(&ready).unwrap();
    node.advance();
    assert_eq!(node.commit_index(), 2);

    let mut again = Raft::<u64>::new("n0", &ids(3), config(), 2, &storage).unwrap();
    assert_eq!(
        (again.term(), again.vote(), again.role()),
        (1, Some("n0"), Role::Follower)
    );
    assert_eq!(again.log(), node.log());
    let ready = again.ready();
    assert_eq!(ready.entries, []);
    assert_eq!(ready.hard_state, None);
    assert_eq!(ready.committed, node.log());
}

#[test]
fn a_new_commit_index_alone_is_no_hard_state_change() {
    let mut node = leader();
    node.propose(5).unwrap();
    sent(&mut node);
    ack(&mut node, "n1", 2, 1);
    assert_eq!(node.commit_index(), 2);
    let ready = node.ready();
    node.advance();
    assert_eq!((ready.hard_state, ready.committed.len()), (None, 1));
    // A new term is one, and it carries the commit index along.
    node.step("n1", append(5, (2, 1), vec![], 2));
    assert_eq!(
        node.ready().hard_state,
        Some(HardState {
            term: 5,
            vote: None,
            commit: 2
        })
    );
}

#[test]
fn a_stored_commit_past_the_log_is_rejected() {
    let mut storage = MemStorage::<u64>::new();
    storage
        .set_hard_state(&HardState {
            term: 1,
            vote: None,
            commit: 3,
        })
        .unwrap();
    assert!(Raft::new("n0", &ids(3), config(), 1, &storage).is_err());
}

#[test]
fn ready_reports_each_change_once() {
    let mut node = node(3);
    tick_until(&mut node, Role::Candidate);
    let ready = node.ready();
    node.advance();
    assert_eq!(ready.soft_state.unwrap().role, Role::Candidate);
    assert_eq!(ready.hard_state.unwrap().vote.as_deref(), Some("n0"));
    assert!(!node.has_ready());
}

#[test]
#[should_panic(expected = "advance()")]
fn stepping_before_advance_is_a_bug() {
    let mut node = node(3);
    let _ = node.ready();
    node.tick();
}

#[test]
fn messages_have_a_compact_json_form() {
    let append = append(3, (6, 2), entries(7, &[3]), 5);
    assert_eq!(
        serde_json::to_value(&append).unwrap(),
        json!({"type":"append","term":3,"prev_index":6,"prev_term":2,
               "entries":[{"index":7,"term":3,"cmd":7}],"commit":5,"round":1})
    );
    let heartbeat = self::append(3, (6, 2), vec![], 5);
    assert_eq!(
        serde_json::to_string(&heartbeat).unwrap(),
        r#"{"type":"append","term":3,"prev_index":6,"prev_term":2,"commit":5,"round":1}"#
    );
    let reject = Message::<u64>::AppendReject(AppendReject {
        term: 3,
        index: 6,
        hint_index: 4,
        hint_term: Some(2),
        round: 9,
    });
    let text =
        r#"{"type":"append_reject","term":3,"index":6,"hint_index":4,"hint_term":2,"round":9}"#;
    assert_eq!(serde_json::to_string(&reject).unwrap(), text);
    assert_eq!(serde_json::from_str::<Message<u64>>(text).unwrap(), reject);
    let ok = r#"{"type":"append_ok","term":3,"index":6,"round":9}"#;
    assert!(serde_json::from_str::<Message<u64>>(ok).is_ok());
    let pre_vote = Message::<u64>::PreVote(VoteRequest {
        term: 4,
        last_index: 9,
        last_term: 3,
    });
    assert_eq!(
        serde_json::to_string(&pre_vote).unwrap(),
        r#"{"type":"pre_vote","term":4,"last_index":9,"last_term":3}"#
    );
    assert_eq!(
        serde_json::to_string(&Message::<u64>::VoteResp(VoteResponse {
            term: 4,
            granted: true
        }))
        .unwrap(),
        r#"{"type":"vote_resp","term":4,"granted":true}"#
    );
}

#[test]
fn a_null_command_is_not_a_no_op() {
    let entry = Entry {
        index: 1,
        term: 1,
        cmd: Some(serde_json::Value::Null),
    };
    let text = serde_json::to_string(&entry).unwrap();
    assert_eq!(text, r#"{"index":1,"term":1,"cmd":null}"#);
    assert_eq!(
        serde_json::from_str::<Entry<serde_json::Value>>(&text).unwrap(),
        entry
    );
    let no_op: Entry<serde_json::Value> = serde_json::from_str(r#"{"index":1,"term":1}"#).unwrap();
    assert_eq!(no_op.cmd, None);
}

// Messages no correct peer sends.

#[test]
fn terms_and_indexes_no_cluster_reaches_are_ignored() {
    let huge = u64::MAX;
    let mut fresh = node(3);
    // Adopting such a term made the next election's `term + 1` overflow;
    // such a `prev_index` overflowed while checking the entries' numbers.
    fresh.step(
        "n1",
        Message::VoteResp(VoteResponse {
            term: huge,
            granted: false,
        }),
    );
    fresh.step("n1", vote(IMPLAUSIBLE, 0, 0));
    fresh.step("n1", append(1, (huge, 0), vec![], 0));
    fresh.step("n1", append(1, (0, 0), entries(1, &[1]), huge));
    assert_eq!((fresh.term(), fresh.leader()), (0, None));
    assert!(sent(&mut fresh).is_empty());
    tick_until(&mut fresh, Role::Candidate);
    assert_eq!(fresh.term(), 1);
    // A leader ignores answers about indexes past any log (for a follower
    // it probes, a reject's `index + 1` overflowed).
    let mut lead = leader();
    let term = lead.term();
    lead.step(
        "n1",
        Message::AppendReject(AppendReject {
            term,
            index: huge,
            hint_index: 1,
            hint_term: None,
            round: 1,
        }),
    );
    lead.step(
        "n1",
        Message::AppendOk(AppendOk {
            term,
            index: huge,
            round: 1,
        }),
    );
    assert!(sent(&mut lead).is_empty());
    assert_eq!(lead.role(), Role::Leader);
    // Just below the limit is still a term like any other.
    let mut follower = node(3);
    follower.step("n1", vote(IMPLAUSIBLE - 1, 0, 0));
    assert_eq!(follower.term(), IMPLAUSIBLE - 1);
}

#[test]
fn an_append_that_contradicts_a_committed_entry_is_ignored() {
    let mut node = node(3);
    node.step("n1", append(1, (0, 0), entries(1, &[1, 1]), 1));
    sent(&mut node);
    assert_eq!(node.commit_index(), 1);
    // A leader of term 2 that lacks committed entry 1 cannot exist; this
    // one used to make the node panic.
    node.step("n1", append(2, (0, 0), entries(1, &[2]), 1));
    assert_eq!(terms(&node), [1, 1]);
    assert_eq!(node.commit_index(), 1);
    assert!(sent(&mut node).is_empty());
    // The uncommitted entry 2 may still be replaced.
    node.step("n1", append(2, (1, 1), entries(2, &[2]), 2));
    assert_eq!(terms(&node), [1, 2]);
    assert_eq!(node.commit_index(), 2);
}
