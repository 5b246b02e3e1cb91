//! A node's durable journal: an append-only file of records, one JSON line
//! each, in the directory the host gives the node (`Context::data_dir`).
//!
//! A record is appended with a single `write` before the node acts on it
//! (acknowledges, promises, forwards), so a node killed at any point finds
//! every record it acted on when it restarts. A kill in the middle of a
//! write leaves a torn last line, which `open` cuts off: nothing was done
//! on its account. Writes are not synced to the disk: they survive the
//! process being killed, not the machine crashing (see
//! `raft::Durability` for a store that syncs).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An append-only file of `R` records.
#[derive(Debug)]
pub struct Journal<R> {
    file: File,
    _records: PhantomData<fn(R)>,
}

impl<R: Serialize + DeserializeOwned> Journal<R> {
    /// Opens (or creates) the journal at `path` and reads its records. The
    /// file is cut after the last complete record that decodes, so the
    /// next append starts on a clean line.
    pub fn open(path: &Path) -> io::Result<(Journal<R>, Vec<R>)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        let mut good = 0;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let record = match line.split_last() {
                Some((b'\n', json)) => serde_json::from_slice(json).ok(),
                _ => None,
            };
            let Some(record) = record else { break };
            records.push(record);
            good += line.len() as u64;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        file.set_len(good)?;
        let journal = Journal {
            file,
            _records: PhantomData,
        };
        Ok((journal, records))
    }

    /// Appends one record with a single write.
    pub fn append(&mut self, record: &R) -> io::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("glomers-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn records_survive_reopening_and_a_torn_line_is_cut() {
        let path = path("torn");
        let (mut journal, records) = Journal::<(u64, String)>::open(&path).unwrap();
        assert!(records.is_empty());
        journal.append(&(1, "a".into())).unwrap();
        journal.append(&(2, "b".into())).unwrap();
        drop(journal);
        // A kill in the middle of the third write.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"[3,\"c").unwrap();
        drop(file);
        let (mut journal, records) = Journal::<(u64, String)>::open(&path).unwrap();
        assert_eq!(records, [(1, "a".into()), (2, "b".into())]);
        journal.append(&(4, "d".into())).unwrap();
        drop(journal);
        let (_, records) = Journal::<(u64, String)>::open(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], (4, "d".into()));
        std::fs::remove_file(&path).unwrap();
    }
}
