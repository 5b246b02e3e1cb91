//! Clients for Maelstrom's built-in services: the key-value stores `seq-kv`,
//! `lin-kv` and `lww-kv`, and the timestamp oracle `lin-tso`.
//!
//! Each call is an RPC through the node's [`Context`]; the callback receives
//! the decoded result. Errors keep their Maelstrom code, so callers can tell
//! a missing key (20) or a failed compare-and-set (22) from a timeout.
//!
//! ```
//! use glomers::kv::Kv;
//! use glomers::{Context, Message, Node};
//! # #[derive(serde::Serialize, serde::Deserialize)]
//! # #[serde(tag = "type")] enum Payload { Add { delta: i64 } }
//! struct Counter;
//! impl Node for Counter {
//!     type Payload = Payload;
//!     fn handle(&mut self, ctx: &mut Context<Self>, _msg: Message<Payload>) {
//!         Kv::seq().read::<_, i64>(ctx, "total", |_node, _ctx, result| {
//!             eprintln!("total is {result:?}");
//!         });
//!     }
//! }
//! ```

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::node::{Context, Node, RpcError};
use crate::protocol::ErrorCode;

/// A key-value service client: which service, and how long to wait.
#[derive(Debug, Clone)]
pub struct Kv {
    service: &'static str,
    timeout: Duration,
}

/// The default time to wait for a service reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Request<'a, K: Serialize, V: Serialize> {
    Read {
        key: &'a K,
    },
    Write {
        key: &'a K,
        value: &'a V,
    },
    Cas {
        key: &'a K,
        from: &'a V,
        to: &'a V,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        create_if_not_exists: bool,
    },
}

#[derive(Deserialize)]
struct ReadOk<V> {
    value: V,
}

/// Any reply whose only meaning is "it worked" (`write_ok`, `cas_ok`).
#[derive(Deserialize)]
struct Ack {}

impl Kv {
    /// The sequentially consistent store: reads may be stale until this node
    /// itself writes something.
    pub fn seq() -> Kv {
        Kv::service("seq-kv")
    }

    /// The linearizable store.
    pub fn lin() -> Kv {
        Kv::service("lin-kv")
    }

    /// The last-write-wins store (eventually consistent, at best).
    pub fn lww() -> Kv {
        Kv::service("lww-kv")
    }

    fn service(service: &'static str) -> Kv {
        Kv {
            service,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another RPC timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Kv {
        self.timeout = timeout;
        self
    }

    /// The service's node id.
    pub fn name(&self) -> &'static str {
        self.service
    }

    /// Reads `key`; a missing key is `Err` with code 20.
    pub fn read<N, V>(
        &self,
        ctx: &mut Context<N>,
        key: impl Serialize,
        callback: impl FnOnce(&mut N, &mut Context<N>, Result<V, RpcError>) + 'static,
    ) where
        N: Node,
        V: DeserializeOwned + 'static,
    {
        let request: Request<'_, _, ()> = Request::Read { key: &key };
        ctx.rpc(
            self.service,
            &request,
            self.timeout,
            move |node, ctx, result| callback(node, ctx, result.map(|ok: ReadOk<V>| ok.value)),
        );
    }

    /// Reads `key`, treating a missing key as `None`.
    pub fn read_opt<N, V>(
        &self,
        ctx: &mut Context<N>,
        key: impl Serialize,
        callback: impl FnOnce(&mut N, &mut Context<N>, Result<Option<V>, RpcError>) + 'static,
    ) where
        N: Node,
        V: DeserializeOwned + 'static,
    {
        self.read(ctx, key, move |node, ctx, result| {
            let result = match result {
                Ok(value) => Ok(Some(value)),
                Err(e) if e.code() == Some(ErrorCode::KeyDoesNotExist) => Ok(None),
                Err(e) => Err(e),
            };
            callback(node, ctx, result)
        });
    }

    /// Writes `value` to `key`, creating the key if needed.
    pub fn write<N: Node>(
        &self,
        ctx: &mut Context<N>,
        key: impl Serialize,
        value: impl Serialize,
        callback: impl FnOnce(&mut N, &mut Context<N>, Result<(), RpcError>) + 'static,
    ) {
        let request = Request::Write {
            key: &key,
            value: &value,
        };
        ctx.rpc(
            self.service,
            &request,
            self.timeout,
            move |node, ctx, result| callback(node, ctx, result.map(|_: Ack| ())),
        );
    }

    /// Sets `key` to `to` if it currently holds `from`; code 22 if it holds
    /// something else, code 20 if it is missing and `create_if_not_exists`
    /// is false (then the key is created with `to`).
    pub fn cas<N: Node, V: Serialize>(
        &self,
        ctx: &mut Context<N>,
        key: impl Serialize,
        from: V,
        to: V,
        create_if_not_exists: bool,
        callback: impl FnOnce(&mut N, &mut Context<N>, Result<(), RpcError>) + 'static,
    ) {
        let request = Request::Cas {
            key: &key,
            from: &from,
            to: &to,
            create_if_not_exists,
        };
        ctx.rpc(
            self.service,
            &request,
            self.timeout,
            move |node, ctx, result| callback(node, ctx, result.map(|_: Ack| ())),
        );
    }
}

/// Client of `lin-tso`, the linearizable timestamp oracle.
#[derive(Debug, Clone)]
pub struct Tso {
    timeout: Duration,
}

impl Default for Tso {
    fn default() -> Self {
        Tso {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Tso {
    /// The same client with another RPC timeout.
    pub fn with_timeout(timeout: Duration) -> Tso {
        Tso { timeout }
    }

    /// Fetches the next timestamp (0, 1, 2, ...).
    pub fn ts<N: Node>(
        &self,
        ctx: &mut Context<N>,
        callback: impl FnOnce(&mut N, &mut Context<N>, Result<u64, RpcError>) + 'static,
    ) {
        #[derive(Serialize)]
        #[serde(tag = "type", rename = "ts")]
        struct Ts {}
        #[derive(Deserialize)]
        struct TsOk {
            ts: u64,
        }
        ctx.rpc("lin-tso", &Ts {}, self.timeout, move |node, ctx, result| {
            callback(node, ctx, result.map(|ok: TsOk| ok.ts))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::{init_line, lines};
    use crate::{Message, Runtime};
    use serde_json::{Value, json};

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Payload {
        Go,
    }

    /// Issues one of every call on `go` and records the results.
    #[derive(Default)]
    struct Client {
        results: Vec<String>,
    }

    impl Node for Client {
        type Payload = Payload;
        fn handle(&mut self, ctx: &mut Context<Self>, _: Message<Payload>) {
            Kv::seq().read::<_, i64>(ctx, "a", |n: &mut Client, _, r| {
                n.results.push(format!("read {r:?}"))
            });
            Kv::lin().read_opt::<_, i64>(ctx, 7, |n: &mut Client, _, r| {
                n.results.push(format!("read_opt {r:?}"))
            });
            Kv::lww().write(ctx, "k", json!([1, 2]), |n: &mut Client, _, r| {
                n.results.push(format!("write {r:?}"))
            });
            Kv::seq().cas(ctx, "k", 1, 2, true, |n: &mut Client, _, r| {
                n.results.push(format!("cas {:?}", r.map_err(|e| e.code())))
            });
            Tso::default().ts(ctx, |n: &mut Client, _, r| {
                n.results.push(format!("ts {r:?}"))
            });
        }
    }

    #[test]
    fn requests_have_the_service_shapes_and_replies_decode() {
        let mut rt = Runtime::new(Client::default(), 1);
        rt.handle_line(&init_line("n0", &["n0"]), Duration::ZERO)
            .unwrap();
        rt.take_output();
        let go = json!({"src":"c1","dest":"n0","body":{"type":"go"}}).to_string();
        rt.handle_line(&go, Duration::ZERO).unwrap();
        let sent = lines(&rt.take_output());
        // Message ids are consecutive from wherever this incarnation starts.
        let first = sent[0]["body"]["msg_id"].as_u64().unwrap();
        let requests: Vec<(Value, Value)> = sent
            .iter()
            .map(|m| {
                let mut body = m["body"].clone();
                body["msg_id"] = json!(body["msg_id"].as_u64().unwrap() - first);
                (m["dest"].clone(), body)
            })
            .collect();
        assert_eq!(
            requests,
            vec![
                (json!("seq-kv"), json!({"type":"read","key":"a","msg_id":0})),
                (json!("lin-kv"), json!({"type":"read","key":7,"msg_id":1})),
                (
                    json!("lww-kv"),
                    json!({"type":"write","key":"k","value":[1,2],"msg_id":2})
                ),
                (
                    json!("seq-kv"),
                    json!({"type":"cas","key":"k","from":1,"to":2,"create_if_not_exists":true,"msg_id":3})
                ),
                (json!("lin-tso"), json!({"type":"ts","msg_id":4})),
            ]
        );
        let reply = |src: &str, body: Value, k: u64| {
            let mut body = body;
            body["in_reply_to"] = json!(first + k);
            json!({"src": src, "dest": "n0", "body": body})
        };
        let replies = [
            reply("seq-kv", json!({"type":"read_ok","value":3}), 0),
            reply("lin-kv", json!({"type":"error","code":20}), 1),
            reply("lww-kv", json!({"type":"write_ok"}), 2),
            reply("seq-kv", json!({"type":"error","code":22,"text":"x"}), 3),
            reply("lin-tso", json!({"type":"ts_ok","ts":41}), 4),
        ];
        for reply in replies {
            rt.handle_line(&reply.to_string(), Duration::ZERO).unwrap();
        }
        assert_eq!(
            rt.node().results,
            vec![
                "read Ok(3)",
                "read_opt Ok(None)",
                "write Ok(())",
                "cas Err(Some(PreconditionFailed))",
                "ts Ok(41)",
            ]
        );
    }

    #[test]
    fn a_service_that_never_answers_times_out() {
        let mut rt = Runtime::new(Client::default(), 1);
        rt.handle_line(&init_line("n0", &["n0"]), Duration::ZERO)
            .unwrap();
        let go = json!({"src":"c1","dest":"n0","body":{"type":"go"}}).to_string();
        rt.handle_line(&go, Duration::ZERO).unwrap();
        rt.fire_timers(DEFAULT_TIMEOUT);
        assert_eq!(
            rt.node().results,
            vec![
                "read Err(Timeout)",
                "read_opt Err(Timeout)",
                "write Err(Timeout)",
                "cas Err(None)",
                "ts Err(Timeout)",
            ]
        );
    }
}
