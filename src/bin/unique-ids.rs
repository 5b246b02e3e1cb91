//! Challenge 2, unique ids: every `generate` gets an id no other request, on
//! any node, ever gets, with no coordination at all, so the node stays fully
//! available through partitions.
//!
//! An id is `<node>-<boot>-<counter>`: node ids are unique in the cluster,
//! the counter is unique within one run of the process, and `boot` tells
//! apart the runs of one node (a node killed and restarted with its memory
//! wiped must not hand out its old ids again). When the host gives the node
//! a durable directory, `boot` is a counter kept there, so uniqueness is
//! certain; otherwise it is a random 64-bit tag, which repeats with
//! probability 2^-64 per pair of runs. Ids are strings, one comparable type,
//! as Maelstrom's checker requires.

use std::fs;
use std::path::Path;

use glomers::{Context, Message, Node};
use rand::RngExt;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Generate,
    GenerateOk { id: String },
}

#[derive(Default)]
pub struct UniqueIdsNode {
    prefix: String,
    counter: u64,
}

impl Node for UniqueIdsNode {
    type Payload = Payload;

    fn init(&mut self, ctx: &mut Context<Self>) {
        let boot = match ctx.data_dir().map(next_boot) {
            Some(Ok(boot)) => format!("b{boot}"),
            Some(Err(e)) => {
                eprintln!("unique-ids: cannot keep a boot counter ({e}); using a random tag");
                format!("{:016x}", ctx.rng().random::<u64>())
            }
            None => format!("{:016x}", ctx.rng().random::<u64>()),
        };
        self.prefix = format!("{}-{boot}", ctx.node_id());
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        if let Payload::Generate = msg.body.payload {
            self.counter += 1;
            let id = format!("{}-{}", self.prefix, self.counter);
            ctx.reply(&msg, &Payload::GenerateOk { id });
        }
    }
}

/// Increments the boot counter in `dir` and returns it. The new value is
/// written to a temporary file, synced and renamed into place, so a crash
/// at any moment leaves either the old or the new counter, never a torn one.
fn next_boot(dir: &Path) -> std::io::Result<u64> {
    let path = dir.join("unique-ids.boot");
    let last: u64 = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().unwrap_or(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let tmp = dir.join("unique-ids.boot.tmp");
    fs::write(&tmp, (last + 1).to_string())?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(last + 1)
}

fn main() -> anyhow::Result<()> {
    glomers::run(UniqueIdsNode::default())
}
