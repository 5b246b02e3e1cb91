//! Scenarios on a simulated cluster (MIT 6.5840's Raft tests and the
//! faults Maelstrom injects), with the invariants checked after every step.

use rand::RngExt;

use super::TempDir;
use super::cluster::{Cluster, Network, TICK};
use crate::raft::{Config, Role};

fn config() -> Config {
    Config {
        election_timeout_min: 10,
        election_timeout_max: 20,
        heartbeat_interval: 2,
        max_append_entries: 8,
        pre_vote: true,
        check_quorum: true,
    }
}

/// Plain Raft, for checking that safety does not depend on the extensions.
fn plain() -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..config()
    }
}

#[test]
fn an_initial_election_picks_one_leader_that_stays() {
    for n in [1, 3, 5] {
        for seed in 0..10 {
            let mut c = Cluster::new(n, seed, config());
            let leader = c.wait_leader(100);
            let term = c.node(leader).term();
            assert!(term >= 1);
            c.run(200);
            assert_eq!(
                c.leader(),
                Some(leader),
                "seed {seed}: leadership changed without faults"
            );
            for i in 0..n {
                assert_eq!(c.node(i).term(), term, "seed {seed}: terms disagree");
                assert_eq!(c.node(i).role() == Role::Leader, i == leader);
            }
        }
    }
}

#[test]
fn an_isolated_leader_steps_down_and_rejoins_without_disrupting() {
    for seed in 0..10 {
        let mut c = Cluster::new(5, seed, config());
        c.commit_one(100);
        let old = c.leader().unwrap();
        c.isolate(old);
        // The old leader accepts these but can never commit or serve them.
        let lost = c.propose(old).unwrap();
        let read = c.read(old).unwrap();
        let rest: Vec<usize> = (0..5).filter(|&i| i != old).collect();
        let new = c.wait_leader_among(&rest, 100);
        c.commit_one(100);
        // Check-quorum: within two election timeouts it knows it is alone.
        assert!(c.run_until(40, |c| c.node(old).role() != Role::Leader));
        c.heal();
        c.run(100);
        assert_eq!(
            c.leader(),
            Some(new),
            "seed {seed}: the rejoining node disrupted the leader"
        );
        c.converge(200);
        assert!(!c.is_committed(lost) && !c.served(read), "seed {seed}");
    }
}

#[test]
fn an_isolated_follower_catches_up_when_it_returns() {
    for seed in 0..5 {
        let mut c = Cluster::new(3, seed, config());
        let leader = c.wait_leader(100);
        let follower = (leader + 1) % 3;
        c.isolate(follower);
        c.commit_many(leader, 100, 200);
        c.heal();
        let all = c.committed();
        assert!(c.run_until(100, |c| c.node(follower).commit_index() as usize == all));
        assert_eq!(
            c.leader(),
            Some(leader),
            "seed {seed}: the returning follower disrupted"
        );
        c.converge(200);
    }
}

/// MIT 6.5840's "backup" test: leaders back up quickly over long divergent
/// follower logs.
#[test]
fn a_leader_backs_up_quickly_over_long_divergent_logs() {
    for seed in 0..5 {
        let mut c = Cluster::new(5, seed, config());
        c.commit_one(100);
        let first = c.leader().unwrap();
        let [a, b, x, y, z] = [0, 1, 2, 3, 4].map(|k| (first + k) % 5);
        // The old leader and one follower get 50 entries that never commit.
        c.partition(&[&[a, b], &[x, y, z]]);
        c.propose_batch(a, 50);
        // The other three elect a leader and commit 50 of their own.
        c.partition(&[&[a], &[b], &[x, y, z]]);
        let second = c.wait_leader_among(&[x, y, z], 100);
        c.commit_many(second, 50, 200);
        // That leader and one follower get 50 more that never commit.
        let out = [x, y, z].into_iter().find(|&k| k != second).unwrap();
        let with = [x, y, z]
            .into_iter()
            .find(|&k| k != second && k != out)
            .unwrap();
        c.partition(&[&[second, with], &[out], &[a], &[b]]);
        c.propose_batch(second, 50);
        // The first two come back with the one left out: it has the newest
        // committed log, so it leads, and a and b must drop 50 entries each.
        c.partition(&[&[a, b, out], &[second, with]]);
        let conflicts = c.conflicts;
        assert_eq!(c.wait_leader_among(&[a, b, out], 100), out, "seed {seed}");
        c.commit_many(out, 50, 200);
        assert!(c.run_until(100, |c| c.node(a).commit_index()
            == c.node(out).commit_index()));
        // A divergent term costs each follower one round trip (plus the
        // odd duplicate from a re-sent probe); one entry at a time would
        // take 50 each.
        let conflicts = c.conflicts - conflicts;
        assert!(
            conflicts <= 6,
            "seed {seed}: {conflicts} conflicts to back up"
        );
        c.converge(200);
    }
}

#[test]
fn a_minority_never_commits_nor_serves_reads() {
    for config in [config(), plain()] {
        for seed in 0..5 {
            let mut c = Cluster::new(5, seed, config.clone());
            c.commit_one(100);
            let leader = c.leader().unwrap();
            let minority = [leader, (leader + 1) % 5];
            let majority: Vec<usize> = (0..5).filter(|i| !minority.contains(i)).collect();
            c.partition(&[&minority, &majority]);
            let stale = c.propose(leader).unwrap();
            let read = c.read(leader).unwrap();
            let committed = c.committed() as u64;
            let second = c.wait_leader_among(&majority, 100);
            c.commit_many(second, 5, 100);
            c.run(50);
            // The minority may still learn of commits made before the split.
            for i in minority {
                assert!(
                    c.node(i).commit_index() <= committed,
                    "seed {seed}: n{i} committed"
                );
            }
            assert!(!c.is_committed(stale) && !c.served(read), "seed {seed}");
            c.converge(200);
            assert!(!c.is_committed(stale), "seed {seed}");
        }
    }
}

#[test]
fn a_majorities_ring_stays_safe_and_keeps_committing() {
    for (config, progress) in [(config(), true), (plain(), false)] {
        for seed in 0..5 {
            let mut c = Cluster::new(5, seed, config.clone());
            c.wait_leader(100);
            c.ring();
            let before = c.committed();
            for _ in 0..100 {
                c.run(5);
                if let Some(leader) = c.leader() {
                    let _ = c.propose(leader);
                }
            }
            // Pre-vote and check-quorum keep a leader whose neighbours hear
            // it; without them terms churn, but safety must hold.
            let committed = c.committed() - before;
            assert!(
                !progress || committed >= 50,
                "seed {seed}: {committed} commits in the ring"
            );
            c.converge(300);
        }
    }
}

#[test]
fn a_one_way_link_does_not_unseat_the_leader() {
    for seed in 0..5 {
        let mut c = Cluster::new(3, seed, config());
        let leader = c.wait_leader(100);
        let deaf = (leader + 1) % 3;
        // `deaf` never hears the leader, but everyone else does.
        c.cut_link(leader, deaf);
        let term = c.node(leader).term();
        for _ in 0..40 {
            c.run(5);
            c.propose(leader).unwrap();
        }
        assert_eq!(
            (c.leader(), c.node(leader).term()),
            (Some(leader), term),
            "seed {seed}"
        );
        assert_eq!(
            c.node(deaf).term(),
            term,
            "seed {seed}: pre-vote should hold the term"
        );
        c.converge(200);
    }
}

/// MIT 6.5840's Figure 8 test: leaders crash at random, some before they
/// commit, and crashed nodes come back from storage.
#[test]
fn figure_8_leaders_crash_before_and_after_committing() {
    // One entry per AppendEntries, so an old entry can reach a majority
    // before the new leader's own entry does: the window Figure 8 is about.
    let config = Config {
        max_append_entries: 1,
        ..config()
    };
    for (seed, unreliable) in (0..10).map(|s| (s, s % 2 == 1)) {
        let mut c = Cluster::new(5, seed, config.clone());
        if unreliable {
            c.network = Network::unreliable();
        }
        let mut up = 5;
        for _ in 0..100 {
            if let Some(leader) = c.leader() {
                let _ = c.propose(leader);
            }
            let pause = if c.rng().random_bool(0.1) { 50 } else { 2 };
            let pause = c.rng().random_range(0..pause);
            c.run(pause);
            if let Some(leader) = c.leader() {
                c.crash(leader);
                up -= 1;
            }
            if up < 3 {
                let down: Vec<usize> = (0..5).filter(|&i| !c.is_up(i)).collect();
                let i = down[c.rng().random_range(0..down.len())];
                c.restart(i);
                up += 1;
            }
        }
        c.converge(500);
    }
}

/// Figure 8 of the paper, step by step: an entry of an old term that
/// reaches a majority through a later leader is still not committed, and
/// may be overwritten, unless an entry of that leader's term is too.
#[test]
fn figure_8_an_old_entry_on_a_majority_is_not_committed_by_counting() {
    // One entry per AppendEntries, so the old entry and the new leader's
    // no-op travel separately.
    let config = Config {
        max_append_entries: 1,
        ..config()
    };
    for seed in 0..5 {
        let mut c = Cluster::new(5, seed, config.clone());
        let first = c.wait_leader(100);
        let [s1, s2, s3, s4, s5] = [0, 1, 2, 3, 4].map(|k| (first + k) % 5);
        // (a) s1 leads and gets x to s2 only.
        c.partition(&[&[s1, s2], &[s3], &[s4], &[s5]]);
        let x = c.propose(s1).unwrap();
        assert!(c.run_until(20, |c| c.holds(s2, x)));
        c.crash(s1);
        // (b) one of s3, s4, s5 leads a later term and appends y where x
        // is, but is cut off before anyone gets y or its no-op.
        c.partition(&[&[s2], &[s3, s4, s5]]);
        // Stepping message by message isolates e the moment it wins, with
        // its no-op still in flight.
        let leads = |c: &Cluster| c.leader().filter(|l| [s3, s4, s5].contains(l));
        assert!(c.step_until(100, |c| leads(c).is_some()), "seed {seed}");
        let e = leads(&c).unwrap();
        c.isolate(e);
        let y = c.propose(e).unwrap();
        let [c3, c4] = [s3, s4, s5]
            .into_iter()
            .filter(|&k| k != e)
            .collect::<Vec<_>>()[..]
        else {
            unreachable!()
        };
        // (c) s1 returns; s1 or s2 leads a third term and copies x to c3.
        // c3 is cut off from it right after, before the new no-op arrives.
        c.restart(s1);
        c.partition(&[&[s1, s2, c3], &[e], &[c4]]);
        let leader = |c: &Cluster| c.leader().filter(|l| [s1, s2].contains(l));
        assert!(c.step_until(100, |c| leader(c).is_some()), "seed {seed}");
        let l = leader(&c).unwrap();
        assert!(c.step_until(20, |c| c.holds(c3, x)), "seed {seed}");
        c.cut_link(l, c3);
        c.run(5);
        // x is on a majority (l, the other of s1/s2, c3), but only as an
        // entry of an older term: it must not be committed.
        assert!(
            !c.is_committed(x),
            "seed {seed}: x was committed by counting replicas"
        );
        c.crash(l);
        // (d) e returns in a star where only it can gather votes; it wins
        // with c3 and c4 and overwrites x with y, which is safe only
        // because x was never committed.
        c.heal();
        let f = if l == s1 { s2 } else { s1 };
        for (a, b) in [(f, c3), (f, c4), (c3, c4)] {
            c.cut_link(a, b);
            c.cut_link(b, a);
        }
        assert_eq!(c.wait_leader_among(&[e], 200), e, "seed {seed}");
        c.converge(300);
        assert!(c.is_committed(y) && !c.is_committed(x), "seed {seed}");
    }
}

#[test]
fn restarted_nodes_keep_their_state_and_rebuild_the_state_machine() {
    let mut c = Cluster::new(3, 1, config());
    let leader = c.wait_leader(100);
    c.commit_many(leader, 5, 100);
    c.run(10);
    let before: Vec<_> = (0..3)
        .map(|i| (c.node(i).log().to_vec(), c.node(i).hard_state()))
        .collect();
    for i in 0..3 {
        c.crash(i);
    }
    for (i, (log, hard)) in before.iter().enumerate() {
        c.restart(i);
        assert_eq!(c.node(i).log(), log.as_slice());
        let restored = c.node(i).hard_state();
        assert_eq!((restored.term, &restored.vote), (hard.term, &hard.vote));
        // The commit index is stored lazily: only with term and vote.
        assert!(restored.commit <= hard.commit);
        let cmds: Vec<u64> = log[..restored.commit as usize]
            .iter()
            .filter_map(|e| e.cmd)
            .collect();
        assert_eq!(c.applied(i), cmds, "n{i} re-applies its stored commits");
    }
    // The restarted cluster re-learns the rest of its commit index.
    c.commit_one(100);
    c.run(20);
    for (i, (log, hard)) in before.iter().enumerate() {
        let cmds: Vec<u64> = log[..hard.commit as usize]
            .iter()
            .filter_map(|e| e.cmd)
            .collect();
        assert!(c.applied(i).starts_with(&cmds), "n{i} applies them again");
    }
    // Restart the leader alone, then each follower, committing in between.
    for k in 0..3 {
        let i = if k == 0 {
            c.leader().unwrap()
        } else {
            (c.leader().unwrap() + k) % 3
        };
        c.crash(i);
        c.commit_one(100);
        c.restart(i);
        c.commit_one(100);
    }
    c.converge(200);
}

#[test]
fn long_reordering_and_duplication_keep_logs_safe() {
    for seed in 0..4 {
        let mut c = Cluster::new(5, seed, config());
        c.network = Network {
            delay: 1..30,
            loss: 0.05,
            duplicate: 0.2,
            reorder: 0.3,
            long_delay: 40 * TICK,
        };
        for _ in 0..150 {
            c.run(3);
            if let Some(leader) = c.leader() {
                let _ = c.propose(leader);
                let _ = c.read(leader);
            }
        }
        assert!(
            c.committed() >= 30,
            "seed {seed}: only {} commits",
            c.committed()
        );
        c.converge(300);
    }
}

#[test]
fn file_backed_nodes_survive_crashes_and_torn_writes() {
    let dir = TempDir::new("cluster");
    let mut c = Cluster::with_files(3, 7, config(), &dir.0);
    c.wait_leader(100);
    for _ in 0..15 {
        c.commit_one(200);
        let i = c.rng().random_range(0..3);
        c.crash(i);
        c.run(20);
        c.restart(i);
    }
    c.converge(300);
}
