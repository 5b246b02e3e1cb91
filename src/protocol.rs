//! Maelstrom's wire protocol: envelopes, bodies and error codes.
//!
//! A message is `{"src": .., "dest": .., "body": {"type": .., ...}}`, one JSON
//! object per line. Payloads are serde enums tagged by `type`:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(tag = "type", rename_all = "snake_case")]
//! enum Payload {
//!     Echo { echo: serde_json::Value },
//!     EchoOk { echo: serde_json::Value },
//! }
//! ```
//!
//! The top-level `id` Maelstrom adds to every message is ignored on input and
//! never written on output.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A node or client identifier such as `n0`, `c12` or `seq-kv`.
pub type NodeId = String;

/// One message as a node sees it: who sent it, to whom, and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message<P> {
    pub src: NodeId,
    pub dest: NodeId,
    pub body: Body<P>,
}

/// A message body: Maelstrom's header fields plus the typed payload, which
/// carries the `type` tag and the remaining fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body<P> {
    #[serde(flatten)]
    pub payload: P,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<u64>,
}

impl<P> Message<P> {
    /// True when this message answers an earlier request (`in_reply_to` is set).
    pub fn is_reply(&self) -> bool {
        self.body.in_reply_to.is_some()
    }
}

/// The `init` message every node receives first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    pub node_id: NodeId,
    pub node_ids: Vec<NodeId>,
}

/// Extra fields of a payload variant that the node does not model but wants
/// to keep (and possibly send back), for use with `#[serde(flatten)]`.
///
/// Unlike a plain flattened map it never captures the header fields `type`,
/// `msg_id` and `in_reply_to`, so echoing it back cannot duplicate them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Extra(pub Map<String, Value>);

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::deserialize(deserializer)?;
        for header in ["type", "msg_id", "in_reply_to"] {
            map.remove(header);
        }
        Ok(Extra(map))
    }
}

/// Maelstrom's error codes. Codes 0-999 are Maelstrom's own; 1000 and up are
/// free for applications and are carried as [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// 0: the operation did not complete in time (indefinite).
    Timeout,
    /// 1: the request was addressed to a node that does not exist.
    NodeNotFound,
    /// 10: the request type is not supported by this node.
    NotSupported,
    /// 11: the node cannot serve the request right now (no quorum, not ready).
    TemporarilyUnavailable,
    /// 12: the request could not be parsed or is missing fields.
    MalformedRequest,
    /// 13: a generic failure that may or may not have taken effect.
    Crash,
    /// 14: a generic failure known not to have taken effect.
    Abort,
    /// 20: the key does not exist.
    KeyDoesNotExist,
    /// 21: the key already exists.
    KeyAlreadyExists,
    /// 22: a precondition (such as a CAS `from` value) did not hold.
    PreconditionFailed,
    /// 30: the transaction was aborted because of a conflict.
    TxnConflict,
    /// Any other code: unknown codes are treated as indefinite.
    Other(u32),
}

impl ErrorCode {
    /// Every code Maelstrom defines, in numeric order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Timeout,
        ErrorCode::NodeNotFound,
        ErrorCode::NotSupported,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::MalformedRequest,
        ErrorCode::Crash,
        ErrorCode::Abort,
        ErrorCode::KeyDoesNotExist,
        ErrorCode::KeyAlreadyExists,
        ErrorCode::PreconditionFailed,
        ErrorCode::TxnConflict,
    ];

    /// The numeric code on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::Timeout => 0,
            ErrorCode::NodeNotFound => 1,
            ErrorCode::NotSupported => 10,
            ErrorCode::TemporarilyUnavailable => 11,
            ErrorCode::MalformedRequest => 12,
            ErrorCode::Crash => 13,
            ErrorCode::Abort => 14,
            ErrorCode::KeyDoesNotExist => 20,
            ErrorCode::KeyAlreadyExists => 21,
            ErrorCode::PreconditionFailed => 22,
            ErrorCode::TxnConflict => 30,
            ErrorCode::Other(code) => code,
        }
    }

    /// The code for a number on the wire.
    pub fn from_code(code: u32) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|known| known.code() == code)
            .unwrap_or(ErrorCode::Other(code))
    }

    /// Definite errors mean the operation did not and never will take
    /// effect; indefinite ones (timeout, crash, unknown codes) may have.
    pub fn is_definite(self) -> bool {
        !matches!(
            self,
            ErrorCode::Timeout | ErrorCode::Crash | ErrorCode::Other(_)
        )
    }

    /// Maelstrom's name for the code, as it appears in histories.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Timeout => "timeout",
            ErrorCode::NodeNotFound => "node-not-found",
            ErrorCode::NotSupported => "not-supported",
            ErrorCode::TemporarilyUnavailable => "temporarily-unavailable",
            ErrorCode::MalformedRequest => "malformed-request",
            ErrorCode::Crash => "crash",
            ErrorCode::Abort => "abort",
            ErrorCode::KeyDoesNotExist => "key-does-not-exist",
            ErrorCode::KeyAlreadyExists => "key-already-exists",
            ErrorCode::PreconditionFailed => "precondition-failed",
            ErrorCode::TxnConflict => "txn-conflict",
            ErrorCode::Other(_) => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u32::deserialize(deserializer).map(ErrorCode::from_code)
    }
}

/// An error as carried by an `error` body: a code and an optional text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaelstromError {
    pub code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl MaelstromError {
    pub fn new(code: ErrorCode, text: impl Into<String>) -> Self {
        MaelstromError {
            code,
            text: Some(text.into()),
        }
    }

    pub fn is_definite(&self) -> bool {
        self.code.is_definite()
    }

    /// The error as a reply body (`type: "error"`) without `in_reply_to`.
    pub fn to_payload(&self) -> ErrorPayload<'_> {
        ErrorPayload {
            kind: "error",
            code: self.code,
            text: self.text.as_deref(),
        }
    }
}

impl fmt::Display for MaelstromError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(text) => write!(f, "error {}: {}", self.code, text),
            None => write!(f, "error {}", self.code),
        }
    }
}

impl std::error::Error for MaelstromError {}

/// The serialisable payload of an error reply.
#[derive(Debug, Serialize)]
pub struct ErrorPayload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// The header fields every body has, read without touching the rest.
#[derive(Debug, Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub msg_id: Option<u64>,
    #[serde(default)]
    pub in_reply_to: Option<u64>,
}

/// A message with its body still as raw JSON text.
#[derive(Debug, Deserialize)]
pub(crate) struct RawEnvelope<'a> {
    #[serde(borrow)]
    pub src: Cow<'a, str>,
    #[serde(borrow)]
    pub dest: Cow<'a, str>,
    #[serde(borrow)]
    pub body: &'a RawValue,
}

/// A message received by a node, decoded as far as the node's types allow.
#[derive(Debug)]
pub(crate) enum Inbound<P> {
    /// The `init` message.
    Init {
        src: NodeId,
        msg_id: Option<u64>,
        init: Init,
    },
    /// A message whose payload decoded into the node's payload type.
    Message(Message<P>),
    /// A reply (`in_reply_to` set); decoded later against the pending RPC.
    Reply(RawReply),
    /// A message whose `type` the node does not know.
    Unknown {
        src: NodeId,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
        kind: String,
    },
    /// A message of a known type whose fields did not decode.
    Malformed {
        src: NodeId,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
        error: String,
    },
}

/// A reply still in raw form, so an RPC callback can decode it into the type
/// it expects.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub src: NodeId,
    pub dest: NodeId,
    pub kind: String,
    pub msg_id: Option<u64>,
    pub in_reply_to: u64,
    pub body: Box<RawValue>,
}

impl RawReply {
    /// Decodes the reply: an `error` body becomes `Err`, anything else is
    /// decoded into `R`.
    pub fn decode<R: DeserializeOwned>(&self) -> Result<R, crate::node::RpcError> {
        use crate::node::RpcError;
        if self.kind == "error" {
            return match serde_json::from_str::<MaelstromError>(self.body.get()) {
                Ok(error) => Err(RpcError::Remote(error)),
                Err(e) => Err(RpcError::Malformed(format!("bad error reply: {e}"))),
            };
        }
        serde_json::from_str(self.body.get())
            .map_err(|e| RpcError::Malformed(format!("reply of type {:?}: {e}", self.kind)))
    }
}

/// Why a line could not be read as a message at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decodes one input line for a node whose payload type is `P`.
pub(crate) fn decode_line<P: DeserializeOwned>(line: &str) -> Result<Inbound<P>, LineError> {
    // Fast path, one pass over the line: an ordinary request of a type the
    // node knows. Replies, `init` and anything unusual take the careful path.
    if let Ok(message) = serde_json::from_str::<Message<P>>(line)
        && message.body.in_reply_to.is_none()
    {
        return Ok(Inbound::Message(message));
    }
    decode_line_carefully(line)
}

/// Decodes a line in steps (envelope, header, payload), so that each kind
/// of problem gets its own answer.
fn decode_line_carefully<P: DeserializeOwned>(line: &str) -> Result<Inbound<P>, LineError> {
    let envelope: RawEnvelope<'_> =
        serde_json::from_str(line).map_err(|e| LineError(format!("not a message: {e}")))?;
    let header: Header<'_> = serde_json::from_str(envelope.body.get())
        .map_err(|e| LineError(format!("bad message body: {e}")))?;
    let src = envelope.src.into_owned();
    if let Some(in_reply_to) = header.in_reply_to {
        return Ok(Inbound::Reply(RawReply {
            src,
            dest: envelope.dest.into_owned(),
            kind: header.kind.into_owned(),
            msg_id: header.msg_id,
            in_reply_to,
            body: envelope.body.to_owned(),
        }));
    }
    if header.kind == "init" {
        return match serde_json::from_str::<Init>(envelope.body.get()) {
            Ok(init) => Ok(Inbound::Init {
                src,
                msg_id: header.msg_id,
                init,
            }),
            Err(e) => Ok(Inbound::Malformed {
                src,
                msg_id: header.msg_id,
                in_reply_to: None,
                error: format!("bad init: {e}"),
            }),
        };
    }
    Ok(decode_payload(
        src,
        envelope.dest.into_owned(),
        &header,
        envelope.body.get(),
    ))
}

/// Decodes a body's payload, telling an unknown `type` from bad fields.
pub(crate) fn decode_payload<P: DeserializeOwned>(
    src: NodeId,
    dest: NodeId,
    header: &Header<'_>,
    body: &str,
) -> Inbound<P> {
    match serde_json::from_str::<P>(body) {
        Ok(payload) => Inbound::Message(Message {
            src,
            dest,
            body: Body {
                payload,
                msg_id: header.msg_id,
                in_reply_to: header.in_reply_to,
            },
        }),
        // serde reports an unrecognised tag of an internally tagged enum as
        // "unknown variant `<type>`"; anything else (including an unknown
        // variant of an enum inside the body) is a known type with bad fields.
        Err(e)
            if e.to_string()
                .starts_with(&format!("unknown variant `{}`", header.kind)) =>
        {
            Inbound::Unknown {
                src,
                msg_id: header.msg_id,
                in_reply_to: header.in_reply_to,
                kind: header.kind.to_string(),
            }
        }
        Err(e) => Inbound::Malformed {
            src,
            msg_id: header.msg_id,
            in_reply_to: header.in_reply_to,
            error: format!("bad {:?} message: {e}", header.kind),
        },
    }
}

/// Writes one message as a JSON line (no top-level `id`).
pub(crate) fn encode_line<P: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    src: &str,
    dest: &str,
    payload: &P,
    msg_id: Option<u64>,
    in_reply_to: Option<u64>,
) -> Result<(), serde_json::Error> {
    #[derive(Serialize)]
    struct OutBody<'a, P: ?Sized> {
        #[serde(flatten)]
        payload: &'a P,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_id: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<u64>,
    }
    #[derive(Serialize)]
    struct OutMessage<'a, P: ?Sized> {
        src: &'a str,
        dest: &'a str,
        body: OutBody<'a, P>,
    }
    let start = out.len();
    let message = OutMessage {
        src,
        dest,
        body: OutBody {
            payload,
            msg_id,
            in_reply_to,
        },
    };
    match serde_json::to_writer(&mut *out, &message) {
        Ok(()) => {
            out.push(b'\n');
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// A loosely typed body, useful for tools that route messages without
/// knowing every payload type.
pub type AnyBody = BTreeMap<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Payload {
        Echo {
            echo: Value,
        },
        EchoOk {
            echo: Value,
        },
        Topology {
            topology: BTreeMap<String, Vec<String>>,
        },
        Note {
            text: String,
            #[serde(flatten)]
            extra: Extra,
        },
        Pick {
            side: Side,
        },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Side {
        Left,
        Right,
    }

    #[test]
    fn every_error_code_round_trips_and_knows_if_it_is_definite() {
        let codes: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, vec![0, 1, 10, 11, 12, 13, 14, 20, 21, 22, 30]);
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), code);
        }
        let indefinite: Vec<u32> = ErrorCode::ALL
            .iter()
            .filter(|c| !c.is_definite())
            .map(|c| c.code())
            .collect();
        assert_eq!(indefinite, vec![0, 13]);
        assert_eq!(ErrorCode::from_code(1005), ErrorCode::Other(1005));
        assert!(!ErrorCode::Other(1005).is_definite());
        assert_eq!(ErrorCode::PreconditionFailed.name(), "precondition-failed");
    }

    #[test]
    fn error_payload_has_maelstrom_shape() {
        let error = MaelstromError::new(ErrorCode::KeyDoesNotExist, "no such key");
        let mut out = Vec::new();
        encode_line(&mut out, "n0", "c1", &error.to_payload(), None, Some(4)).unwrap();
        let line: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"src":"n0","dest":"c1","body":
                {"type":"error","code":20,"text":"no such key","in_reply_to":4}})
        );
    }

    #[test]
    fn decodes_a_request_and_ignores_the_top_level_id() {
        let line =
            r#"{"id":17,"src":"c3","dest":"n0","body":{"type":"echo","echo":"hi","msg_id":5}}"#;
        match decode_line::<Payload>(line).unwrap() {
            Inbound::Message(msg) => {
                assert_eq!(msg.src, "c3");
                assert_eq!(msg.body.msg_id, Some(5));
                assert_eq!(msg.body.payload, Payload::Echo { echo: "hi".into() });
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tells_unknown_types_from_malformed_ones() {
        let unknown = r#"{"src":"c1","dest":"n0","body":{"type":"frobnicate","msg_id":2}}"#;
        assert!(matches!(
            decode_line::<Payload>(unknown).unwrap(),
            Inbound::Unknown { msg_id: Some(2), ref kind, .. } if kind == "frobnicate"
        ));
        let missing_field = r#"{"src":"c1","dest":"n0","body":{"type":"echo","msg_id":3}}"#;
        assert!(matches!(
            decode_line::<Payload>(missing_field).unwrap(),
            Inbound::Malformed {
                msg_id: Some(3),
                ..
            }
        ));
        let wrong_type =
            r#"{"src":"c1","dest":"n0","body":{"type":"topology","topology":[1],"msg_id":4}}"#;
        assert!(matches!(
            decode_line::<Payload>(wrong_type).unwrap(),
            Inbound::Malformed {
                msg_id: Some(4),
                ..
            }
        ));
        // An unknown variant of an enum inside the body is a bad field, not
        // an unknown message type.
        let bad_variant =
            r#"{"src":"c1","dest":"n0","body":{"type":"pick","side":"up","msg_id":5}}"#;
        assert!(matches!(
            decode_line::<Payload>(bad_variant).unwrap(),
            Inbound::Malformed {
                msg_id: Some(5),
                ..
            }
        ));
    }

    #[test]
    fn rejects_lines_that_are_not_messages() {
        for line in [
            "",
            "not json",
            "[1,2]",
            r#"{"src":"c1","body":{"type":"echo"}}"#,
            r#"{"src":"c1","dest":"n0","body":{"msg_id":1}}"#,
            r#"{"src":"c1","dest":"n0","body":{"type":"echo","msg_id":-1}}"#,
        ] {
            assert!(decode_line::<Payload>(line).is_err(), "accepted {line:?}");
        }
    }

    #[test]
    fn replies_stay_raw_until_decoded_by_their_rpc() {
        let line =
            r#"{"src":"seq-kv","dest":"n0","body":{"type":"read_ok","value":7,"in_reply_to":9}}"#;
        let Inbound::Reply(reply) = decode_line::<Payload>(line).unwrap() else {
            panic!("not a reply")
        };
        assert_eq!(reply.in_reply_to, 9);
        #[derive(Deserialize)]
        struct ReadOk {
            value: i64,
        }
        assert_eq!(reply.decode::<ReadOk>().unwrap().value, 7);

        let error =
            r#"{"src":"seq-kv","dest":"n0","body":{"type":"error","code":20,"in_reply_to":9}}"#;
        let Inbound::Reply(reply) = decode_line::<Payload>(error).unwrap() else {
            panic!("not a reply")
        };
        match reply.decode::<ReadOk>() {
            Err(crate::node::RpcError::Remote(e)) => {
                assert_eq!(e.code, ErrorCode::KeyDoesNotExist)
            }
            other => panic!("unexpected {:?}", other.map(|r| r.value)),
        }
    }

    #[test]
    fn extra_fields_are_kept_without_header_fields() {
        let line = r#"{"src":"c1","dest":"n0","body":{"type":"note","text":"t","colour":"red","msg_id":8}}"#;
        let Inbound::Message(msg) = decode_line::<Payload>(line).unwrap() else {
            panic!("not a message")
        };
        let Payload::Note { extra, .. } = &msg.body.payload else {
            panic!("not a note")
        };
        assert_eq!(extra.0.len(), 1);
        assert_eq!(extra.0["colour"], "red");
        let mut out = Vec::new();
        encode_line(&mut out, "n0", "c1", &msg.body.payload, None, Some(8)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"src\":\"n0\",\"dest\":\"c1\",\"body\":{\"type\":\"note\",\"text\":\"t\",\"colour\":\"red\",\"in_reply_to\":8}}\n"
        );
    }

    #[test]
    fn message_type_round_trips_through_serde() {
        let msg = Message {
            src: "n1".to_string(),
            dest: "n2".to_string(),
            body: Body {
                payload: Payload::EchoOk { echo: 3.into() },
                msg_id: Some(1),
                in_reply_to: None,
            },
        };
        let text = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            text,
            r#"{"src":"n1","dest":"n2","body":{"type":"echo_ok","echo":3,"msg_id":1}}"#
        );
        let back: Message<Payload> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn a_payload_that_cannot_be_flattened_is_an_error_not_a_panic() {
        let mut out = b"keep".to_vec();
        assert!(encode_line(&mut out, "n0", "n1", &5, None, None).is_err());
        assert_eq!(out, b"keep");
    }
}
