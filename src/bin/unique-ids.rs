//! Challenge 2, unique ids: every `generate` gets an id no other request, on
//! any node, ever gets, with no coordination at all, so the node stays fully
//! available through partitions.
//!
//! An id is `<node>-<boot>-<counter>`: node ids are unique in the cluster,
//! the counter is unique within one run of the process, and `boot` is a
//! random 32-bit tag drawn at start-up so that a node restarted with its
//! memory wiped does not hand out its old ids again. Ids are strings, one
//! comparable type, as Maelstrom's checker requires.

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
        let boot: u32 = ctx.rng().random();
        self.prefix = format!("{}-{boot:08x}", ctx.node_id());
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        if let Payload::Generate = msg.body.payload {
            self.counter += 1;
            let id = format!("{}-{}", self.prefix, self.counter);
            ctx.reply(&msg, &Payload::GenerateOk { id });
        }
    }
}

fn main() -> anyhow::Result<()> {
    glomers::run(UniqueIdsNode::default())
}
