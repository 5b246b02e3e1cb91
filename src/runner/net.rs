//! The simulated network: message envelopes, latency, partitions, and the
//! journal of every send and delivery from which message statistics come.
//!
//! As in Maelstrom, messages to or from a client (any id starting with `c`)
//! have no latency and are never partitioned; everything else (node to node,
//! node to service) pays latency and counts as "servers" traffic. Partitions
//! are evaluated at delivery, on the receiver's side.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::options::LatencyDist;
use super::random;
use crate::history::{NANOS_PER_MS, Time};

/// A message in flight, with Maelstrom's global message id.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: u64,
    pub src: String,
    pub dest: String,
    pub body: Box<RawValue>,
}

impl Envelope {
    /// The line written to a node's stdin: compact JSON with the top-level
    /// `id` Maelstrom adds.
    pub fn to_line(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Wire<'a> {
            id: u64,
            src: &'a str,
            dest: &'a str,
            body: &'a RawValue,
        }
        let mut line = serde_json::to_vec(&Wire {
            id: self.id,
            src: &self.src,
            dest: &self.dest,
            body: &self.body,
        })
        .expect("an envelope always serialises");
        line.push(b'\n');
        line
    }
}

/// A line a node printed, validated the way Maelstrom does: exactly `src`,
/// `dest` and `body`, plus an optional integer `id` that is overwritten.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOutput {
    #[allow(dead_code)]
    #[serde(default)]
    id: Option<u64>,
    pub src: String,
    pub dest: String,
    pub body: Box<RawValue>,
}

impl NodeOutput {
    /// Parses one line of a node's stdout.
    pub fn parse(line: &[u8]) -> Result<NodeOutput, String> {
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }
}

/// True for Maelstrom client ids: anything starting with `c`.
pub fn is_client(id: &str) -> bool {
    id.starts_with('c')
}

/// Draws per-message latency from the seed, keyed by link and by the
/// message's position on that link, so thread timing in a real-time run
/// cannot change which latency a given message gets.
#[derive(Debug, Clone)]
pub struct LatencyModel {
    mean_ms: f64,
    dist: LatencyDist,
    seed: u64,
    sent_per_link: HashMap<(String, String), u64>,
}

impl LatencyModel {
    pub fn new(mean_ms: f64, dist: LatencyDist, seed: u64) -> LatencyModel {
        LatencyModel {
            mean_ms,
            dist,
            seed: random::derive(seed, "latency"),
            sent_per_link: HashMap::new(),
        }
    }

    /// The delay of the next message from `src` to `dest`, in whole
    /// milliseconds as Maelstrom truncates it.
    pub fn next(&mut self, src: &str, dest: &str) -> Time {
        if is_client(src) || is_client(dest) || self.mean_ms <= 0.0 {
            return 0;
        }
        let n = self
            .sent_per_link
            .entry((src.to_string(), dest.to_string()))
            .or_insert(0);
        *n += 1;
        let unit = random::unit(self.seed, &[src, dest], *n);
        let ms = match self.dist {
            LatencyDist::Constant => self.mean_ms,
            LatencyDist::Uniform => unit * 2.0 * self.mean_ms,
            LatencyDist::Exponential => -self.mean_ms * (1.0 - unit).ln(),
        };
        (ms.floor() as Time) * NANOS_PER_MS
    }
}

/// Which senders each receiver currently ignores (a Jepsen "grudge").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grudge {
    drops: HashMap<String, HashSet<String>>,
}

impl Grudge {
    /// Makes `receiver` drop everything from `sender`.
    pub fn drop_from(&mut self, receiver: &str, sender: &str) {
        self.drops
            .entry(receiver.to_string())
            .or_default()
            .insert(sender.to_string());
    }

    /// True when a message from `src` to `dest` must be dropped.
    pub fn blocks(&self, src: &str, dest: &str) -> bool {
        self.drops.get(dest).is_some_and(|s| s.contains(src))
    }

    pub fn is_empty(&self) -> bool {
        self.drops.values().all(HashSet::is_empty)
    }

    /// `{receiver: [senders]}` with sorted lists, as recorded in histories.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let mut receivers: Vec<&String> = self.drops.keys().collect();
        receivers.sort();
        for receiver in receivers {
            let mut senders: Vec<&String> = self.drops[receiver].iter().collect();
            senders.sort();
            map.insert(receiver.clone(), serde_json::json!(senders));
        }
        serde_json::Value::Object(map)
    }
}

/// Counts for one category of traffic, named as in Maelstrom's `:net`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TrafficCounts {
    #[serde(rename = "send-count")]
    pub send_count: u64,
    #[serde(rename = "recv-count")]
    pub recv_count: u64,
    #[serde(rename = "msg-count")]
    pub msg_count: u64,
}

/// Message statistics over the whole run.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    pub all: TrafficCounts,
    pub clients: TrafficCounts,
    pub servers: TrafficCounts,
    /// How late each delivery was relative to its deadline, in nanoseconds.
    pub delivery_lag: Vec<Time>,
    /// Messages dropped by partitions.
    pub dropped: u64,
    /// Messages addressed to an endpoint that does not exist (any more).
    pub unknown_dest: u64,
    /// Messages lost by simulated message loss.
    pub lost: u64,
    /// Messages addressed to a killed node.
    pub to_down_nodes: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl NetStats {
    fn category(&mut self, src: &str, dest: &str) -> &mut TrafficCounts {
        if is_client(src) || is_client(dest) {
            &mut self.clients
        } else {
            &mut self.servers
        }
    }

    fn on_send(&mut self, src: &str, dest: &str) {
        self.all.send_count += 1;
        self.all.msg_count += 1;
        let category = self.category(src, dest);
        category.send_count += 1;
        category.msg_count += 1;
    }

    fn on_recv(&mut self, src: &str, dest: &str, lag: Time) {
        self.all.recv_count += 1;
        self.category(src, dest).recv_count += 1;
        self.delivery_lag.push(lag);
    }
}

/// Records every send and delivery, to `messages.jsonl` when a file is
/// given, and keeps the statistics.
pub struct Journal {
    out: Option<BufWriter<File>>,
    pub stats: NetStats,
    digest: u64,
}

#[derive(Serialize)]
struct JournalEntry<'a> {
    time: Time,
    event: &'a str,
    id: u64,
    src: &'a str,
    dest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<Time>,
}

impl Journal {
    /// A journal that keeps statistics only.
    pub fn in_memory() -> Journal {
        Journal {
            out: None,
            stats: NetStats::default(),
            digest: FNV_OFFSET,
        }
    }

    /// A journal that also writes every event to `path`.
    pub fn to_file(path: &Path) -> std::io::Result<Journal> {
        Ok(Journal {
            out: Some(BufWriter::new(File::create(path)?)),
            stats: NetStats::default(),
            digest: FNV_OFFSET,
        })
    }

    pub fn send(&mut self, now: Time, msg: &Envelope, deadline: Time) {
        self.stats.on_send(&msg.src, &msg.dest);
        self.write(now, "send", msg, Some(&msg.body), Some(deadline));
    }

    pub fn recv(&mut self, now: Time, msg: &Envelope, deadline: Time) {
        self.stats
            .on_recv(&msg.src, &msg.dest, now.saturating_sub(deadline));
        self.write(now, "recv", msg, None, None);
    }

    /// A message dropped at delivery because of a partition.
    pub fn drop_partitioned(&mut self, now: Time, msg: &Envelope) {
        self.stats.dropped += 1;
        self.write(now, "drop", msg, None, None);
    }

    /// A message to a node that is down (killed and not restarted).
    pub fn drop_down(&mut self, now: Time, msg: &Envelope) {
        self.stats.to_down_nodes += 1;
        self.write(now, "node-down", msg, None, None);
    }

    /// A message the network lost (simulated message loss).
    pub fn drop_lost(&mut self, now: Time, msg: &Envelope) {
        self.stats.lost += 1;
        self.write(now, "lost", msg, None, None);
    }

    /// A digest of every event so far: equal digests mean identical traffic.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// A message addressed to an endpoint that does not exist.
    pub fn drop_unknown(&mut self, now: Time, msg: &Envelope) {
        self.stats.unknown_dest += 1;
        self.write(now, "unknown-dest", msg, None, None);
    }

    fn write(
        &mut self,
        time: Time,
        event: &str,
        msg: &Envelope,
        body: Option<&RawValue>,
        deadline: Option<Time>,
    ) {
        for part in [
            &time.to_le_bytes()[..],
            event.as_bytes(),
            &msg.id.to_le_bytes(),
            msg.src.as_bytes(),
            msg.dest.as_bytes(),
            body.map_or(&b""[..], |b| b.get().as_bytes()),
        ] {
            self.digest = fnv1a(self.digest, part);
        }
        if let Some(out) = &mut self.out {
            let entry = JournalEntry {
                time,
                event,
                id: msg.id,
                src: &msg.src,
                dest: &msg.dest,
                body,
                deadline,
            };
            // The journal is diagnostic; a failed write must not end the test.
            let _ = serde_json::to_writer(&mut *out, &entry)
                .and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io));
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_no_latency_and_nodes_get_the_distribution() {
        let mut constant = LatencyModel::new(100.0, LatencyDist::Constant, 1);
        assert_eq!(constant.next("c4", "n0"), 0);
        assert_eq!(constant.next("n0", "c4"), 0);
        assert_eq!(constant.next("n0", "n1"), 100 * NANOS_PER_MS);
        assert_eq!(constant.next("n0", "seq-kv"), 100 * NANOS_PER_MS);

        let mut uniform = LatencyModel::new(100.0, LatencyDist::Uniform, 1);
        let draws: Vec<Time> = (0..2000)
            .map(|_| uniform.next("n0", "n1") / NANOS_PER_MS)
            .collect();
        assert!(draws.iter().all(|ms| *ms < 200));
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        assert!((mean - 99.5).abs() < 5.0, "mean {mean}");

        let mut exponential = LatencyModel::new(10.0, LatencyDist::Exponential, 1);
        let draws: Vec<Time> = (0..4000)
            .map(|_| exponential.next("n0", "n1") / NANOS_PER_MS)
            .collect();
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        // Truncation to whole milliseconds lowers the mean by about 0.5 ms.
        assert!((mean - 9.5).abs() < 1.0, "mean {mean}");
        assert!(draws.iter().any(|ms| *ms > 30), "a long tail");
    }

    #[test]
    fn latency_depends_on_the_link_and_its_sequence_not_on_global_order() {
        let mut a = LatencyModel::new(50.0, LatencyDist::Uniform, 9);
        let mut b = LatencyModel::new(50.0, LatencyDist::Uniform, 9);
        let a1 = a.next("n0", "n1");
        let _ = a.next("n2", "n3");
        let a2 = a.next("n0", "n1");
        let b1 = b.next("n0", "n1");
        let b2 = b.next("n0", "n1");
        assert_eq!((a1, a2), (b1, b2));
    }

    #[test]
    fn grudges_block_only_the_named_direction() {
        let mut grudge = Grudge::default();
        grudge.drop_from("n1", "n2");
        assert!(grudge.blocks("n2", "n1"));
        assert!(!grudge.blocks("n1", "n2"));
        assert_eq!(grudge.to_json(), serde_json::json!({"n1": ["n2"]}));
    }

    #[test]
    fn node_output_is_validated_like_maelstrom() {
        assert!(NodeOutput::parse(br#"{"src":"n0","dest":"c1","body":{"type":"x"}}"#).is_ok());
        assert!(NodeOutput::parse(br#"{"id":4,"src":"n0","dest":"c1","body":{}}"#).is_ok());
        assert!(NodeOutput::parse(br#"{"src":"n0","dest":"c1","body":{},"extra":1}"#).is_err());
        assert!(NodeOutput::parse(br#"{"src":"n0","body":{}}"#).is_err());
        assert!(NodeOutput::parse(b"").is_err());
        assert!(NodeOutput::parse(b"hello").is_err());
    }

    #[test]
    fn stats_split_clients_from_servers() {
        let mut journal = Journal::in_memory();
        let msg = |src: &str, dest: &str| Envelope {
            id: 1,
            src: src.into(),
            dest: dest.into(),
            body: RawValue::from_string("{}".into()).unwrap(),
        };
        journal.send(0, &msg("c1", "n0"), 0);
        journal.send(0, &msg("n0", "n1"), 5);
        journal.send(0, &msg("n0", "seq-kv"), 5);
        journal.recv(7, &msg("n0", "n1"), 5);
        let stats = &journal.stats;
        assert_eq!(stats.all.msg_count, 3);
        assert_eq!(stats.clients.msg_count, 1);
        assert_eq!(stats.servers.msg_count, 2);
        assert_eq!(stats.servers.recv_count, 1);
        assert_eq!(stats.delivery_lag, vec![2]);
    }
}
