//! Challenge 1, echo: answer every `echo` with an `echo_ok` carrying the same
//! value. Nothing to trade off; the interesting part is the library under it.

use glomers::{Context, Message, Node};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Echo { echo: Value },
    EchoOk { echo: Value },
}

#[derive(Default)]
pub struct EchoNode;

impl Node for EchoNode {
    type Payload = Payload;

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        if let Payload::Echo { echo } = &msg.body.payload {
            ctx.reply(&msg, &Payload::EchoOk { echo: echo.clone() });
        }
    }
}

fn main() -> anyhow::Result<()> {
    glomers::run(EchoNode)
}
