//! A toolbox for the Gossip Glomers distributed-systems challenges.
//!
//! The node library is what a solution imports: the wire [`protocol`], the
//! [`Node`] trait with its [`Context`] (send, reply, RPC with callbacks and
//! timeouts, timers), the stdin/stdout host [`run`], and clients for
//! Maelstrom's key-value services in [`kv`]. [`raft`] is a sans-IO Raft
//! core for the nodes that need consensus.
//!
//! ```no_run
//! use glomers::{Context, Message, Node};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(tag = "type", rename_all = "snake_case")]
//! enum Payload {
//!     Echo { echo: serde_json::Value },
//!     EchoOk { echo: serde_json::Value },
//! }
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Node for Echo {
//!     type Payload = Payload;
//!     fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
//!         if let Payload::Echo { echo } = &msg.body.payload {
//!             ctx.reply(&msg, &Payload::EchoOk { echo: echo.clone() });
//!         }
//!     }
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     glomers::run(Echo)
//! }
//! ```

// The challenge binaries, included by `solutions`, refer to the library by
// its name; this makes that name resolve inside the library too.
extern crate self as glomers;

pub mod challenges;
pub mod checker;
pub mod fuzzing;
pub mod history;
pub mod journal;
pub mod kv;
pub mod node;
pub mod protocol;
pub mod raft;
pub mod results;
pub mod runner;
pub mod sim;
pub mod solutions;
pub mod stdio;
pub mod testing;
pub mod workload;

pub use node::{Context, Node, NodeRng, RpcError, Runtime, TimerId};
pub use protocol::{Body, ErrorCode, Extra, MaelstromError, Message, NodeId};
pub use stdio::run;

/// Compiles the README's Rust examples as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
