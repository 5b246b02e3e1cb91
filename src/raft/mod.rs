//! A sans-IO Raft core in the style of etcd raft and tikv raft-rs.
//!
//! [`Raft`] is a pure state machine: no I/O, no clock, no threads. The host
//! owns the network, the timer and the [`Storage`]; it feeds the node logical
//! ticks, peer messages, proposals and read requests, and after each call
//! drains a [`Ready`]: persist its entries and hard state, then send its
//! messages, apply its committed entries, serve its reads, and `advance`.
//!
//! ```
//! use glomers::raft::{Config, MemStorage, Raft, Storage};
//!
//! let mut storage = MemStorage::<String>::new();
//! let mut node = Raft::new("n0", &[], Config::default(), 7, &storage).unwrap();
//! let mut applied = Vec::new();
//! let mut pump = |node: &mut Raft<String>, storage: &mut MemStorage<String>| {
//!     if node.has_ready() {
//!         let ready = node.ready();
//!         storage.persist(&ready).unwrap(); // durable before anything leaves
//!         for out in ready.messages {
//!             let _json = serde_json::to_string(&out.msg).unwrap(); // send to out.to
//!         }
//!         applied.extend(ready.committed.into_iter().filter_map(|e| e.cmd));
//!         node.advance();
//!     }
//! };
//! // A lone node elects itself once its election timer runs out.
//! while node.leader() != Some("n0") {
//!     node.tick();
//!     pump(&mut node, &mut storage);
//! }
//! let (index, term) = node.propose("set x 1".to_string()).unwrap();
//! pump(&mut node, &mut storage);
//! assert_eq!((index, term), (2, 1)); // index 1 is the leader's no-op
//! assert_eq!(applied, ["set x 1"]);
//! ```
//!
//! What is implemented: leader election with randomised timeouts, pre-vote
//! and check-quorum; log replication with batching and fast back-off over
//! divergent logs; the commit rule of the paper's Figure 8; ReadIndex
//! reads. Membership is fixed; there are no snapshots, so the log (kept in
//! memory as well as in storage) grows without bound.

mod file_storage;
mod log;
mod message;
mod node;
mod progress;
mod storage;

#[cfg(test)]
mod tests;

pub use file_storage::{Durability, FileStorage};
pub use message::{
    Append, AppendOk, AppendReject, Entry, HardState, IMPLAUSIBLE, Message, NotLeader, Outgoing,
    ReadState, Ready, Role, SoftState, VoteRequest, VoteResponse,
};
pub use node::{Config, Raft};
pub use storage::{MemStorage, Storage};
