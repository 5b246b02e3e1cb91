//! The challenge binaries as Maelstrom sees them: processes speaking JSON
//! lines on stdin and stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Runs a binary with `input` on stdin (and extra argv), returns its stdout
/// messages and its exit status.
fn run(binary: &str, args: &[&str], input: &str) -> (Vec<Value>, std::process::ExitStatus) {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start binary");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let messages = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout holds only JSON messages"))
        .collect();
    (messages, out.status)
}

fn init(node: &str, nodes: &[&str]) -> String {
    json!({"id":0,"src":"c0","dest":node,"body":{"type":"init","node_id":node,"node_ids":nodes,"msg_id":1}}).to_string()
}

fn request(id: u64, body: Value) -> String {
    json!({"id": id, "src": "c2", "dest": "n0", "body": body}).to_string()
}

#[test]
fn echo_replies_have_exactly_maelstroms_shape() {
    let input = [
        init("n0", &["n0"]),
        request(1, json!({"type":"echo","echo":"Please echo 35","msg_id":1})),
        request(2, json!({"type":"echo","echo":{"nested":[1,2]},"msg_id":2})),
    ]
    .join("\n");
    let (out, status) = run(env!("CARGO_BIN_EXE_echo"), &[], &input);
    assert!(status.success());
    assert_eq!(
        out,
        vec![
            json!({"src":"n0","dest":"c0","body":{"type":"init_ok","in_reply_to":1}}),
            json!({"src":"n0","dest":"c2","body":{"type":"echo_ok","echo":"Please echo 35","in_reply_to":1}}),
            json!({"src":"n0","dest":"c2","body":{"type":"echo_ok","echo":{"nested":[1,2]},"in_reply_to":2}}),
        ]
    );
}

#[test]
fn echo_survives_bad_input_and_answers_the_next_message() {
    let input = [
        init("n0", &["n0"]),
        "{this is not json".to_string(),
        request(1, json!({"type":"echo","msg_id":1})),
        request(2, json!({"type":"teleport","msg_id":2})),
        json!({"src":"c2","body":{"type":"echo","echo":1}}).to_string(),
        "[]".to_string(),
        request(3, json!({"type":"echo","echo":3,"msg_id":3})),
    ]
    .join("\n");
    let (out, status) = run(env!("CARGO_BIN_EXE_echo"), &["extra", "--args"], &input);
    assert!(status.success(), "exits cleanly at end of input");
    let bodies: Vec<&Value> = out.iter().map(|m| &m["body"]).collect();
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[1]["code"], 12, "missing field: malformed request");
    assert_eq!(bodies[1]["in_reply_to"], 1);
    assert_eq!(bodies[2]["code"], 10, "unknown type: not supported");
    assert_eq!(bodies[2]["in_reply_to"], 2);
    assert_eq!(
        *bodies[3],
        json!({"type":"echo_ok","echo":3,"in_reply_to":3})
    );
}

#[test]
fn unique_ids_are_unique_across_nodes_and_restarts() {
    let mut ids = std::collections::HashSet::new();
    for (node, boot) in [("n0", 1), ("n1", 1), ("n0", 2)] {
        let mut input = vec![init(node, &["n0", "n1"])];
        for i in 1..=500 {
            input.push(
                json!({"src":"c9","dest":node,"body":{"type":"generate","msg_id":i}}).to_string(),
            );
        }
        let (out, status) = run(env!("CARGO_BIN_EXE_unique-ids"), &[], &input.join("\n"));
        assert!(status.success());
        assert_eq!(out.len(), 501, "{node} boot {boot}");
        for reply in &out[1..] {
            let id = reply["body"]["id"].as_str().expect("ids are strings");
            assert!(ids.insert(id.to_string()), "duplicate id {id}");
        }
    }
}

#[test]
fn broadcast_replies_have_exactly_maelstroms_shape() {
    let input = [
        init("n0", &["n0"]),
        request(
            1,
            json!({"type":"topology","topology":{"n0":[]},"msg_id":1}),
        ),
        request(2, json!({"type":"broadcast","message":5,"msg_id":2})),
        request(3, json!({"type":"broadcast","message":"five","msg_id":3})),
        request(4, json!({"type":"read","msg_id":4})),
    ]
    .join("\n");
    let (out, status) = run(env!("CARGO_BIN_EXE_broadcast"), &[], &input);
    assert!(status.success());
    let bodies: Vec<&Value> = out.iter().map(|m| &m["body"]).collect();
    assert_eq!(*bodies[1], json!({"type":"topology_ok","in_reply_to":1}));
    assert_eq!(*bodies[2], json!({"type":"broadcast_ok","in_reply_to":2}));
    assert_eq!(bodies[3]["code"], 12);
    assert_eq!(
        *bodies[4],
        json!({"type":"read_ok","messages":[5],"in_reply_to":4})
    );
}

#[test]
fn g_counter_reads_locally_and_refuses_negative_adds() {
    let input = [
        init("n0", &["n0"]),
        request(1, json!({"type":"read","msg_id":1})),
        request(2, json!({"type":"add","delta":-3,"msg_id":2})),
        request(3, json!({"type":"add","delta":0,"msg_id":3})),
    ]
    .join("\n");
    let (out, status) = run(env!("CARGO_BIN_EXE_g-counter"), &[], &input);
    assert!(status.success());
    let to_client: Vec<&Value> = out
        .iter()
        .filter(|m| m["dest"] == "c2")
        .map(|m| &m["body"])
        .collect();
    assert_eq!(
        *to_client[0],
        json!({"type":"read_ok","value":0,"in_reply_to":1})
    );
    assert_eq!(to_client[1]["code"], 12);
    assert_eq!(*to_client[2], json!({"type":"add_ok","in_reply_to":3}));
    // The node reads its key from seq-kv at start-up.
    assert!(out.iter().any(|m| m["dest"] == "seq-kv"));
}
