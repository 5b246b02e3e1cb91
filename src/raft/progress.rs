//! What a leader knows about each follower's log, and quorum arithmetic.

/// A leader's view of one follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// Probing: still looking for where the logs match, one message at a
    /// time. Otherwise streaming: `next` moves ahead as soon as entries are
    /// sent, and a reject sends the follower back to probing.
    pub probing: bool,
    /// While probing, a probe is in flight (cleared by an answer or the next
    /// heartbeat, which doubles as the retransmission).
    pub probe_sent: bool,
    /// Highest heartbeat round the follower has answered in this term.
    pub acked_round: u64,
    /// Heard from since the last check-quorum.
    pub active: bool,
    /// At the last heartbeat, what was sent in the interval before it went
    /// unanswered: the follower is likely unreachable, so the probe that
    /// heartbeat re-sends carries no entries.
    pub quiet: bool,
    /// An AppendEntries went out since the last heartbeat, so the next
    /// heartbeat would tell a streaming follower nothing new.
    pub sent_since_heartbeat: bool,
    /// `matched` at the previous heartbeat, to notice stalled streaming.
    matched_at_heartbeat: u64,
}

impl Progress {
    /// A follower about which nothing is known yet.
    pub fn new(next: u64) -> Progress {
        Progress {
            matched: 0,
            next,
            probing: true,
            probe_sent: false,
            acked_round: 0,
            active: false,
            quiet: false,
            sent_since_heartbeat: false,
            matched_at_heartbeat: 0,
        }
    }

    /// Whether new entries may be sent now.
    pub fn can_send(&self) -> bool {
        !(self.probing && self.probe_sent)
    }

    /// Records that entries up to `last_sent` (if any) went out.
    pub fn sent(&mut self, last_sent: Option<u64>) {
        if self.probing {
            self.probe_sent = true;
        } else if let Some(last) = last_sent {
            self.next = last + 1;
        }
    }

    /// Called at every heartbeat. Streaming that has entries out but made
    /// no progress for a whole heartbeat interval has most likely lost a
    /// message: fall back to probing from the match. A pending probe is
    /// re-sent.
    pub fn heartbeat(&mut self) {
        let stalled = !self.probing
            && self.next > self.matched + 1
            && self.matched == self.matched_at_heartbeat;
        if stalled {
            self.probing = true;
            self.next = self.matched + 1;
        }
        self.quiet = stalled || (self.probing && self.probe_sent);
        self.probe_sent = false;
        self.matched_at_heartbeat = self.matched;
    }

    /// Records any answer in this term: the follower is alive and follows us.
    pub fn heard(&mut self, round: u64) {
        self.active = true;
        self.acked_round = self.acked_round.max(round);
    }

    /// Records that the follower's log matches ours up to `index`, and
    /// switches to streaming.
    pub fn matched_to(&mut self, index: u64) {
        self.matched = self.matched.max(index);
        self.next = self.next.max(index + 1);
        self.probing = false;
        self.probe_sent = false;
    }

    /// Handles a reject of `prev_index == rejected`; `hinted_next` is where
    /// the follower's hints say to try next. Returns false for a stale reject
    /// (about an index known to match, or not about the outstanding probe),
    /// which must not move `next` back.
    pub fn rejected(&mut self, rejected: u64, hinted_next: u64) -> bool {
        let current = if self.probing {
            rejected + 1 == self.next
        } else {
            rejected < self.next
        };
        if !current || rejected <= self.matched {
            return false;
        }
        self.next = hinted_next.clamp(self.matched + 1, rejected);
        self.probing = true;
        self.probe_sent = false;
        true
    }
}

/// The largest value that at least `quorum` of `values` reach: e.g. the
/// highest index stored on a majority.
pub(crate) fn quorum_value(mut values: Vec<u64>, quorum: usize) -> u64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[quorum - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_value_is_the_majoritys_minimum() {
        assert_eq!(quorum_value(vec![5, 1, 3], 2), 3);
        assert_eq!(quorum_value(vec![5, 1, 3, 9, 2], 3), 3);
        assert_eq!(quorum_value(vec![4], 1), 4);
    }

    #[test]
    fn stale_rejects_do_not_move_next_back() {
        let mut p = Progress::new(11);
        p.matched_to(10);
        p.sent(Some(20));
        assert_eq!(p.next, 21);
        // A reject about an index that is known to match is stale.
        assert!(!p.rejected(10, 1));
        assert!(!p.rejected(5, 1));
        assert_eq!(p.next, 21);
        // A real gap sends it back to probing, never below the match.
        assert!(p.rejected(15, 3));
        assert_eq!((p.next, p.probing), (11, true));
        // While probing only the answer to the probe counts.
        assert!(!p.rejected(12, 11));
        assert!(p.can_send());
        p.sent(Some(15));
        assert!(!p.can_send());
        assert_eq!(p.next, 11);
    }

    #[test]
    fn streaming_without_progress_for_a_heartbeat_falls_back_to_probing() {
        let mut p = Progress::new(1);
        p.matched_to(3);
        p.sent(Some(9));
        p.heartbeat();
        assert!(!p.probing);
        p.matched_to(5);
        p.heartbeat();
        assert!(!p.probing);
        p.heartbeat();
        assert_eq!((p.probing, p.next, p.quiet), (true, 6, true));
        // Nothing out, nothing stalled.
        let mut idle = Progress::new(1);
        idle.matched_to(4);
        idle.heartbeat();
        idle.heartbeat();
        assert!(!idle.probing);
    }
}
