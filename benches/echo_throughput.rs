//! Pipes 1,000,000 echo requests through the `echo` binary and prints the
//! messages per second it sustained. `make bench` runs it; the figure in the
//! README comes from here. With `taskset` available the process is also
//! measured pinned to a single core.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

const REQUESTS: usize = 1_000_000;

fn input() -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUESTS * 100);
    writeln!(
        out,
        r#"{{"id":0,"src":"c0","dest":"n0","body":{{"type":"init","node_id":"n0","node_ids":["n0"],"msg_id":1}}}}"#
    )
    .unwrap();
    for i in 1..=REQUESTS {
        writeln!(
            out,
            r#"{{"id":{i},"src":"c2","dest":"n0","body":{{"type":"echo","echo":"Please echo {}","msg_id":{i}}}}}"#,
            i % 127
        )
        .unwrap();
    }
    out
}

/// Runs the binary (optionally under a wrapper such as `taskset -c 0`) and
/// returns messages per second, counting replies.
fn measure(wrapper: &[&str], input: &[u8]) -> f64 {
    let echo = env!("CARGO_BIN_EXE_echo");
    let mut argv: Vec<&str> = wrapper.to_vec();
    argv.push(echo);
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start echo");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let data = input.to_vec();
    let start = Instant::now();
    let writer = thread::spawn(move || {
        stdin.write_all(&data).unwrap();
    });
    let mut replies = 0usize;
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap() > 0 {
        replies += 1;
        line.clear();
    }
    let elapsed = start.elapsed();
    writer.join().unwrap();
    child.wait().unwrap();
    assert_eq!(
        replies,
        REQUESTS + 1,
        "every request gets exactly one reply"
    );
    REQUESTS as f64 / elapsed.as_secs_f64()
}

fn main() {
    let input = input();
    let best = |wrapper: &[&str]| (0..3).map(|_| measure(wrapper, &input)).fold(0.0, f64::max);
    println!(
        "echo throughput: {:.0} messages/s (best of 3, {REQUESTS} requests)",
        best(&[])
    );
    if Command::new("taskset").arg("-V").output().is_ok() {
        println!(
            "echo throughput pinned to one core: {:.0} messages/s (taskset -c 0)",
            best(&["taskset", "-c", "0"])
        );
    }
}
