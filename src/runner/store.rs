//! The store: one directory per run, `store/<workload>/<timestamp>/`, with
//! `results.json`, `history.jsonl`, `history.txt`, `messages.jsonl`,
//! `glomers.log`, `test.json` and `node-logs/`, plus `latest` links.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::history::{NANOS_PER_MS, Op};

/// A run's directory.
pub struct RunDir {
    pub path: PathBuf,
    store: PathBuf,
    workload: String,
}

impl RunDir {
    /// Creates `store/<workload>/<timestamp>/` (with a suffix if two runs
    /// start in the same millisecond).
    pub fn create(store: &Path, workload: &str) -> Result<RunDir> {
        let base = store.join(workload);
        fs::create_dir_all(&base).with_context(|| {
            format!("cannot create the store directory {}; is it writable? (choose another with --store)", base.display())
        })?;
        let stamp = timestamp(SystemTime::now());
        let mut path = base.join(&stamp);
        let mut n = 1;
        // `create_dir` (not `create_dir_all`) fails when the directory
        // exists, so concurrent runs (`glomers matrix --jobs`) that start
        // in the same millisecond each get a directory of their own.
        loop {
            match fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    path = base.join(format!("{stamp}-{n}"));
                    n += 1;
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        // Absolute, because nodes run in their own directories and are told
        // where their durable state lives.
        let path = std::path::absolute(&path)?;
        Ok(RunDir {
            path,
            store: store.to_path_buf(),
            workload: workload.to_string(),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes pretty JSON to `name`.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<()> {
        let mut out = BufWriter::new(File::create(self.file(name))?);
        serde_json::to_writer_pretty(&mut out, value)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }

    /// Writes the history as JSON lines and as a readable table.
    pub fn write_history(&self, ops: &[Op]) -> Result<()> {
        let mut jsonl = BufWriter::new(File::create(self.file("history.jsonl"))?);
        let mut txt = BufWriter::new(File::create(self.file("history.txt"))?);
        for op in ops {
            serde_json::to_writer(&mut jsonl, op)?;
            jsonl.write_all(b"\n")?;
            writeln!(txt, "{}", history_line(op))?;
        }
        jsonl.flush()?;
        txt.flush()?;
        Ok(())
    }

    /// Points `store/latest`, `store/current` and `store/<workload>/latest`
    /// at this run. Best effort: links are a convenience.
    pub fn link_latest(&self) {
        let Some(name) = self.path.file_name() else {
            return;
        };
        let relative = Path::new(&self.workload).join(name);
        link(&relative, &self.store.join("latest"));
        link(&relative, &self.store.join("current"));
        link(
            Path::new(name),
            &self.store.join(&self.workload).join("latest"),
        );
    }
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    let _ = fs::remove_file(at);
    let _ = std::os::unix::fs::symlink(target, at);
}

#[cfg(not(unix))]
fn link(_target: &Path, _at: &Path) {}

/// One history entry as a line of `history.txt`: time (ms), process, type,
/// f, value and error, tab separated as in Jepsen.
pub fn history_line(op: &Op) -> String {
    let error = op.error.as_ref().map(Value::to_string).unwrap_or_default();
    format!(
        "{:.3}\t{}\t{}\t{}\t{}\t{}",
        op.time as f64 / NANOS_PER_MS as f64,
        op.process,
        serde_json::to_value(op.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        op.f,
        op.value,
        error
    )
}

/// A basic ISO-8601 UTC timestamp with milliseconds, e.g. `20261123T142013.853Z`.
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_basic_iso_utc() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_443_613_853);
        assert_eq!(timestamp(at), "20261123T142013.853Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000Z");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn runs_started_together_get_directories_of_their_own() {
        let store = std::env::temp_dir().join(format!("glomers-store-{}", std::process::id()));
        let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| RunDir::create(&store, "echo").unwrap().path))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<_> = dirs.iter().collect();
        assert_eq!(distinct.len(), dirs.len(), "{dirs:?}");
        fs::remove_dir_all(&store).unwrap();
    }
}
