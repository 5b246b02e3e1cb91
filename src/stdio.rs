//! The stdin/stdout host: runs a [`Node`] as a Maelstrom process.
//!
//! A reader thread reads stdin in large chunks, decodes every complete line
//! and hands the batch to the handler thread over a channel; the handler runs
//! the node, fires timers when they are due (sleeping on the channel until
//! then, never spinning) and writes output through one buffer that is flushed
//! whenever no more input is waiting. Batching keeps a busy node at one
//! channel hand-off and one `write` per chunk of input rather than per line.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use crate::node::{Decoded, Node, Runtime};

/// Runs `node` on stdin/stdout until stdin ends. Extra command-line
/// arguments are ignored (Maelstrom passes its positional arguments on).
///
/// The node's random number generator is seeded from `GLOMERS_SEED` when
/// set, otherwise from the operating system; `GLOMERS_DATA_DIR`, when set,
/// is the node's directory for durable state.
pub fn run<N: Node>(node: N) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let data_dir = std::env::var_os("GLOMERS_DATA_DIR").map(std::path::PathBuf::from);
    let runtime = Runtime::new(node, seed_from_env()).with_data_dir(data_dir);
    run_runtime(runtime, io::stdin(), stdout.lock())
}

/// Runs `node` on any input and output; [`run`] with explicit streams and seed.
pub fn run_with<N, R, W>(node: N, input: R, output: W, seed: u64) -> anyhow::Result<()>
where
    N: Node,
    R: Read + Send + 'static,
    W: Write,
{
    run_runtime(Runtime::new(node, seed), input, output)
}

fn run_runtime<N, R, W>(runtime: Runtime<N>, input: R, mut output: W) -> anyhow::Result<()>
where
    N: Node,
    R: Read + Send + 'static,
    W: Write,
{
    let (tx, rx) = unbounded();
    let reader = thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || read_batches::<N, R>(input, tx))?;
    let result = handle_batches(runtime, rx, &mut output);
    // The reader ends on EOF; if the handler failed first (stdout closed),
    // the reader exits at its next send.
    if result.is_ok() {
        let _ = reader.join();
    }
    result
}

fn seed_from_env() -> u64 {
    std::env::var("GLOMERS_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(rand::random)
}

/// Reads lines in chunks and sends each chunk's decoded messages as a batch.
fn read_batches<N: Node, R: Read>(input: R, tx: Sender<Vec<Decoded<N>>>) {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("glomers: reading stdin failed: {e}");
                break;
            }
        };
        let consumed = chunk.len();
        let mut batch = Vec::new();
        let mut rest = chunk;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(newline);
            if partial.is_empty() {
                decode_into(line, &mut batch);
            } else {
                partial.extend_from_slice(line);
                decode_into(&partial, &mut batch);
                partial.clear();
            }
            rest = &tail[1..];
        }
        partial.extend_from_slice(rest);
        reader.consume(consumed);
        if !batch.is_empty() && tx.send(batch).is_err() {
            return;
        }
    }
    // A last line without a trailing newline still counts.
    let mut batch = Vec::new();
    decode_into(&partial, &mut batch);
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
}

fn decode_into<N: Node>(line: &[u8], batch: &mut Vec<Decoded<N>>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let decoded = std::str::from_utf8(line)
        .map_err(|e| e.to_string())
        .and_then(|text| Runtime::<N>::decode(text).map_err(|e| e.to_string()));
    match decoded {
        Ok(message) => batch.push(message),
        Err(why) => eprintln!(
            "glomers: skipping a malformed input line ({why}): {}",
            preview(line)
        ),
    }
}

fn preview(line: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX)]);
    if line.len() > MAX {
        format!("{text}...")
    } else {
        text.into_owned()
    }
}

/// The handler loop: one thread owns the node, so node code needs no locks.
fn handle_batches<N: Node, W: Write>(
    mut runtime: Runtime<N>,
    rx: Receiver<Vec<Decoded<N>>>,
    output: &mut W,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut buffer = Vec::with_capacity(256 * 1024);
    loop {
        let next = match runtime.next_deadline() {
            Some(deadline) => {
                let wait = deadline.saturating_sub(start.elapsed());
                rx.recv_timeout(wait)
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(batch) => {
                for message in batch {
                    runtime.handle_decoded(message, start.elapsed());
                }
            }
            Err(RecvTimeoutError::Timeout) => runtime.fire_timers(start.elapsed()),
            Err(RecvTimeoutError::Disconnected) => {
                runtime.drain_output_into(&mut buffer);
                write_out(output, &mut buffer)?;
                return Ok(());
            }
        }
        runtime.drain_output_into(&mut buffer);
        if rx.is_empty() || buffer.len() > 1 << 20 {
            write_out(output, &mut buffer)?;
        }
    }
}

fn write_out<W: Write>(output: &mut W, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    if !buffer.is_empty() {
        output.write_all(buffer)?;
        output.flush()?;
        buffer.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::{init_line, lines};
    use crate::{Context, Message};
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Payload {
        Echo { echo: serde_json::Value },
        EchoOk { echo: serde_json::Value },
        Later { ms: u64 },
        Done,
    }

    #[derive(Default)]
    struct Echo;

    impl Node for Echo {
        type Payload = Payload;
        fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
            match &msg.body.payload {
                Payload::Echo { echo } => ctx.reply(&msg, &Payload::EchoOk { echo: echo.clone() }),
                Payload::Later { ms } => {
                    let (src, msg_id) = (msg.src.clone(), msg.body.msg_id);
                    ctx.set_timer(Duration::from_millis(*ms), move |_: &mut Echo, ctx| {
                        ctx.reply_to(&src, msg_id, &Payload::Done)
                    });
                }
                _ => {}
            }
        }
    }

    /// A writer tests can read after the run.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run_input(input: String) -> Vec<serde_json::Value> {
        let out = Shared::default();
        run_with(Echo, io::Cursor::new(input.into_bytes()), out.clone(), 1).unwrap();
        let bytes = out.0.lock().unwrap().clone();
        lines(&bytes)
    }

    #[test]
    fn echoes_and_survives_bad_lines_until_eof() {
        let mut input = init_line("n0", &["n0"]);
        input.push('\n');
        input.push_str("this is not json\n\n");
        input.push_str(
            &json!({"src":"c1","dest":"n0","body":{"type":"echo","echo":1,"msg_id":1}}).to_string(),
        );
        input.push_str("\n{\"src\":\"c1\"}\n");
        input.push_str(
            &json!({"src":"c1","dest":"n0","body":{"type":"bogus","msg_id":2}}).to_string(),
        );
        input.push('\n');
        // The last line has no newline and is still handled.
        input.push_str(
            &json!({"src":"c1","dest":"n0","body":{"type":"echo","echo":[2],"msg_id":3}})
                .to_string(),
        );
        let out = run_input(input);
        let bodies: Vec<_> = out.iter().map(|m| m["body"].clone()).collect();
        assert_eq!(
            bodies,
            vec![
                json!({"type":"init_ok","in_reply_to":1}),
                json!({"type":"echo_ok","echo":1,"in_reply_to":1}),
                json!({"type":"error","code":10,"text":"message type \"bogus\" is not supported","in_reply_to":2}),
                json!({"type":"echo_ok","echo":[2],"in_reply_to":3}),
            ]
        );
    }

    #[test]
    fn a_pipe_that_stays_open_still_fires_timers() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let out = Shared::default();
        let sink = out.clone();
        let handle = thread::spawn(move || run_with(Echo, reader, sink, 1));
        writeln!(writer, "{}", init_line("n0", &["n0"])).unwrap();
        let later = json!({"src":"c1","dest":"n0","body":{"type":"later","ms":20,"msg_id":7}});
        writeln!(writer, "{later}").unwrap();
        // Wait for the timer's reply without closing stdin.
        let deadline = Instant::now() + Duration::from_secs(10);
        while lines(&out.0.lock().unwrap()).len() < 2 {
            assert!(Instant::now() < deadline, "timer never fired");
            thread::sleep(Duration::from_millis(5));
        }
        drop(writer);
        handle.join().unwrap().unwrap();
        let out = lines(&out.0.lock().unwrap());
        assert_eq!(out[1]["body"], json!({"type":"done","in_reply_to":7}));
    }
}
