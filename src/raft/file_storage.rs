//! [`Storage`] in a directory: an append-only log file and a hard-state
//! file replaced atomically.
//!
//! Both files start with an 8-byte magic (`glraftL1`, `glraftH1`) followed
//! by records: a little-endian `u32` payload length, a little-endian `u32`
//! CRC-32 of the length bytes and the payload, and the payload, a JSON
//! [`Entry`] (log) or [`HardState`] (hard state). The log holds one record
//! per entry, in index order; truncating the log cuts the file.
//!
//! Writes are followed by `fsync` before they return, because a node
//! promises what it persisted (votes, acknowledged entries) to others
//! ([`Durability::Machine`], the default). Where only the process can die
//! (the simulator and Maelstrom's `kill` nemesis send `SIGKILL`; the
//! operating system and its page cache live on), [`Durability::Process`]
//! skips the `fsync`s: what was written is read back after a restart all
//! the same, and a simulated run is not slowed down by the disk. A
//! crash while appending leaves at most a torn last record, which `open`
//! cuts off: that append never returned, so nothing was promised about it.
//! A bad record followed by good ones is corruption, not a torn write, and
//! `open` refuses to guess.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::message::{Entry, HardState};
use super::storage::{Storage, check_append, check_range};

const LOG_MAGIC: &[u8; 8] = b"glraftL1";
const HARD_STATE_MAGIC: &[u8; 8] = b"glraftH1";
const LOG_FILE: &str = "log";
const HARD_STATE_FILE: &str = "hardstate";
const HARD_STATE_TEMP: &str = "hardstate.tmp";
const RECORD_HEADER: usize = 8;

/// Which crash the storage's writes survive once they returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A crash of the machine: every write is followed by `fsync`.
    #[default]
    Machine,
    /// A crash (kill) of the process only: writes reach the operating
    /// system and are not synced to the disk.
    Process,
}

/// Raft storage in files under one directory, for a node that must survive
/// a real restart.
#[derive(Debug)]
pub struct FileStorage<C> {
    dir: PathBuf,
    durability: Durability,
    log: File,
    /// `offsets[i]` is where the record of entry `i + 1` starts.
    offsets: Vec<u64>,
    /// End of the last good record.
    end: u64,
    hard: HardState,
    _commands: PhantomData<fn() -> C>,
}

impl<C: Serialize + DeserializeOwned> FileStorage<C> {
    /// Opens the storage in `dir`, creating it if needed, and recovers from
    /// a crash in the middle of an append by dropping its torn record.
    /// Writes survive a crash of the machine.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FileStorage<C>> {
        FileStorage::open_with(dir, Durability::Machine)
    }

    /// Like [`FileStorage::open`], with writes that survive the given crash.
    pub fn open_with(dir: impl AsRef<Path>, durability: Durability) -> io::Result<FileStorage<C>> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let hard = read_hard_state(&dir)?;
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOG_FILE))?;
        let mut data = Vec::new();
        log.read_to_end(&mut data)?;
        let (offsets, end) = if data.len() < LOG_MAGIC.len() {
            // New, or torn while writing the magic: nothing was stored.
            start_log_file(&mut log, &dir, durability)?;
            (Vec::new(), LOG_MAGIC.len() as u64)
        } else {
            scan_log::<C>(&data)?
        };
        if end < data.len() as u64 {
            log.set_len(end)?;
            sync_file(&log, durability)?;
        }
        Ok(FileStorage {
            dir,
            durability,
            log,
            offsets,
            end,
            hard,
            _commands: PhantomData,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cut(&mut self, from: u64) -> io::Result<()> {
        if let Some(&offset) = self.offsets.get(from as usize - 1) {
            self.log.set_len(offset)?;
            self.offsets.truncate(from as usize - 1);
            self.end = offset;
        }
        Ok(())
    }
}

impl<C: Serialize + DeserializeOwned> Storage<C> for FileStorage<C> {
    fn hard_state(&self) -> HardState {
        self.hard.clone()
    }

    fn last_index(&self) -> u64 {
        self.offsets.len() as u64
    }

    fn entries(&self, range: Range<u64>) -> io::Result<Vec<Entry<C>>> {
        check_range(self.last_index(), &range)?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let start = self.offsets[range.start as usize - 1];
        let stop = self
            .offsets
            .get(range.end as usize - 1)
            .copied()
            .unwrap_or(self.end);
        let mut data = vec![0; (stop - start) as usize];
        let mut file = &self.log;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut data)?;
        let mut rest = &data[..];
        let mut entries = Vec::with_capacity((range.end - range.start) as usize);
        while let Some((payload, size)) = next_record(rest)? {
            entries.push(serde_json::from_slice(payload)?);
            rest = &rest[size..];
        }
        Ok(entries)
    }

    fn append(&mut self, entries: &[Entry<C>]) -> io::Result<()> {
        check_append(self.last_index(), entries)?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        self.cut(first.index)?;
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(entries.len());
        for entry in entries {
            offsets.push(self.end + buf.len() as u64);
            encode_record(&mut buf, &serde_json::to_vec(entry)?);
        }
        self.log.seek(SeekFrom::Start(self.end))?;
        self.log.write_all(&buf)?;
        sync_file(&self.log, self.durability)?;
        self.offsets.extend(offsets);
        self.end += buf.len() as u64;
        Ok(())
    }

    fn truncate_from(&mut self, from: u64) -> io::Result<()> {
        if from <= self.last_index() {
            self.cut(from.max(1))?;
            sync_file(&self.log, self.durability)?;
        }
        Ok(())
    }

    fn set_hard_state(&mut self, state: &HardState) -> io::Result<()> {
        let mut buf = HARD_STATE_MAGIC.to_vec();
        encode_record(&mut buf, &serde_json::to_vec(state)?);
        // Write a new file and rename it over the old one: a crash leaves
        // either the old state or the new one, never a mix.
        let temp = self.dir.join(HARD_STATE_TEMP);
        let mut file = File::create(&temp)?;
        file.write_all(&buf)?;
        sync_file(&file, self.durability)?;
        fs::rename(&temp, self.dir.join(HARD_STATE_FILE))?;
        sync_dir(&self.dir, self.durability)?;
        self.hard = state.clone();
        Ok(())
    }
}

/// Writes the magic of a new log file and makes the file's existence durable.
fn start_log_file(log: &mut File, dir: &Path, durability: Durability) -> io::Result<()> {
    log.set_len(0)?;
    log.seek(SeekFrom::Start(0))?;
    log.write_all(LOG_MAGIC)?;
    sync_file(log, durability)?;
    sync_dir(dir, durability)
}

/// Reads every good record of a log file; returns their offsets and where
/// the good part ends (a torn last record lies beyond it).
fn scan_log<C: DeserializeOwned>(data: &[u8]) -> io::Result<(Vec<u64>, u64)> {
    if &data[..LOG_MAGIC.len()] != LOG_MAGIC {
        return Err(invalid(
            "the log file does not start with the expected magic",
        ));
    }
    let mut offsets = Vec::new();
    let mut pos = LOG_MAGIC.len();
    loop {
        match next_record(&data[pos..]) {
            Ok(Some((payload, size))) => {
                let entry: Entry<C> = serde_json::from_slice(payload)?;
                if entry.index != offsets.len() as u64 + 1 {
                    return Err(invalid("log records are out of order"));
                }
                offsets.push(pos as u64);
                pos += size;
            }
            Ok(None) => break,
            Err(RecordError::Torn) => break,
            Err(RecordError::Corrupt) => {
                return Err(invalid("a log record in the middle of the file is corrupt"));
            }
        }
    }
    Ok((offsets, pos as u64))
}

fn read_hard_state(dir: &Path) -> io::Result<HardState> {
    // A leftover temp file is a write that never took effect.
    match fs::remove_file(dir.join(HARD_STATE_TEMP)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let data = match fs::read(dir.join(HARD_STATE_FILE)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HardState::default()),
        other => other?,
    };
    let body = data
        .strip_prefix(HARD_STATE_MAGIC)
        .ok_or_else(|| invalid("the hard-state file does not start with the expected magic"))?;
    match next_record(body) {
        Ok(Some((payload, size))) if size == body.len() => Ok(serde_json::from_slice(payload)?),
        _ => Err(invalid("the hard-state file is damaged")),
    }
}

/// Makes a file's data and size durable, where the durability asks for it.
fn sync_file(file: &File, durability: Durability) -> io::Result<()> {
    match durability {
        // `fdatasync`: the data and the size, which is all a reader needs.
        Durability::Machine => file.sync_data(),
        Durability::Process => Ok(()),
    }
}

/// Makes a directory's entries (a created or renamed file) durable.
fn sync_dir(dir: &Path, durability: Durability) -> io::Result<()> {
    match durability {
        Durability::Machine => File::open(dir)?.sync_all(),
        Durability::Process => Ok(()),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl From<RecordError> for io::Error {
    fn from(error: RecordError) -> io::Error {
        invalid(match error {
            RecordError::Torn => "a log record is cut short",
            RecordError::Corrupt => "a log record is corrupt",
        })
    }
}

/// Why a record could not be read.
#[derive(Debug, PartialEq, Eq)]
enum RecordError {
    /// The data ends inside the record, or the record is the last one and
    /// its checksum fails: what a crash during the write leaves.
    Torn,
    /// The checksum fails and more data follows.
    Corrupt,
}

fn encode_record(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&crc32(&[&len, payload]).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The payload of the record at the start of `data` and the record's size;
/// `None` at the end of the data.
fn next_record(data: &[u8]) -> Result<Option<(&[u8], usize)>, RecordError> {
    if data.is_empty() {
        return Ok(None);
    }
    if data.len() < RECORD_HEADER {
        return Err(RecordError::Torn);
    }
    let len: [u8; 4] = data[..4].try_into().expect("4 bytes");
    let crc = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes"));
    let size = RECORD_HEADER + u32::from_le_bytes(len) as usize;
    if size > data.len() {
        return Err(RecordError::Torn);
    }
    let payload = &data[RECORD_HEADER..size];
    if crc32(&[&len, payload]) != crc {
        return Err(match size == data.len() {
            true => RecordError::Torn,
            false => RecordError::Corrupt,
        });
    }
    Ok(Some((payload, size)))
}

/// CRC-32 (IEEE 802.3, as in zlib and PNG) over the concatenated `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = crc32_table();
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        crc = TABLE[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::tests::TempDir;

    fn entry(index: u64, term: u64) -> Entry<String> {
        Entry {
            index,
            term,
            cmd: Some(format!("cmd {index}")),
        }
    }

    fn open(dir: &TempDir) -> FileStorage<String> {
        FileStorage::open(&dir.0).unwrap()
    }

    fn log_len(dir: &TempDir) -> u64 {
        fs::metadata(dir.0.join(LOG_FILE)).unwrap().len()
    }

    fn append_raw(dir: &TempDir, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.0.join(LOG_FILE))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn a_new_storage_is_empty() {
        let dir = TempDir::new("new");
        let s = open(&dir);
        assert_eq!(s.last_index(), 0);
        assert_eq!(s.hard_state(), HardState::default());
        assert_eq!(log_len(&dir), 8);
    }

    #[test]
    fn entries_and_hard_state_survive_reopening() {
        for durability in [Durability::Machine, Durability::Process] {
            reopen_keeps_everything(durability);
        }
    }

    fn reopen_keeps_everything(durability: Durability) {
        let dir = TempDir::new("reopen");
        let open = |dir: &TempDir| FileStorage::<String>::open_with(&dir.0, durability).unwrap();
        let mut s = open(&dir);
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 2)]).unwrap();
        s.append(&[entry(3, 3), entry(4, 3)]).unwrap();
        let hard = HardState {
            term: 3,
            vote: Some("n1".into()),
            commit: 2,
        };
        s.set_hard_state(&hard).unwrap();
        drop(s);
        let s = open(&dir);
        assert_eq!(s.hard_state(), hard);
        assert_eq!(
            s.entries(1..5).unwrap(),
            [entry(1, 1), entry(2, 1), entry(3, 3), entry(4, 3)]
        );
        assert_eq!(s.entries(2..4).unwrap(), [entry(2, 1), entry(3, 3)]);
        assert!(!dir.0.join(HARD_STATE_TEMP).exists());
    }

    #[test]
    fn truncation_shortens_the_file() {
        let dir = TempDir::new("truncate");
        let mut s = open(&dir);
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
        let full = log_len(&dir);
        s.truncate_from(2).unwrap();
        assert!(log_len(&dir) < full);
        s.append(&[entry(2, 2)]).unwrap();
        drop(s);
        assert_eq!(
            open(&dir).entries(1..3).unwrap(),
            [entry(1, 1), entry(2, 2)]
        );
    }

    #[test]
    fn a_torn_last_record_is_dropped_on_open() {
        let dir = TempDir::new("torn");
        let mut s = open(&dir);
        s.append(&[entry(1, 1), entry(2, 1)]).unwrap();
        drop(s);
        let good = log_len(&dir);
        // A header promising more bytes than were written.
        let mut torn = Vec::new();
        encode_record(&mut torn, br#"{"index":3,"term":1}"#);
        append_raw(&dir, &torn[..torn.len() - 3]);
        let mut s = open(&dir);
        assert_eq!(s.last_index(), 2);
        assert_eq!(log_len(&dir), good);
        // The next append goes where the torn record was.
        s.append(&[entry(3, 2)]).unwrap();
        drop(s);
        assert_eq!(open(&dir).entries(3..4).unwrap(), [entry(3, 2)]);
    }

    #[test]
    fn a_bad_checksum_on_the_last_record_is_a_torn_write() {
        let dir = TempDir::new("badcrc");
        let mut s = open(&dir);
        s.append(&[entry(1, 1)]).unwrap();
        drop(s);
        let mut bad = Vec::new();
        encode_record(&mut bad, br#"{"index":2,"term":1}"#);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        append_raw(&dir, &bad);
        assert_eq!(open(&dir).last_index(), 1);
        // A few stray bytes (less than a header) are torn too.
        append_raw(&dir, &[1, 2, 3]);
        assert_eq!(open(&dir).last_index(), 1);
    }

    #[test]
    fn corruption_before_good_records_is_an_error() {
        let dir = TempDir::new("corrupt");
        let mut s = open(&dir);
        s.append(&[entry(1, 1), entry(2, 1)]).unwrap();
        drop(s);
        let path = dir.0.join(LOG_FILE);
        let mut data = fs::read(&path).unwrap();
        data[8 + RECORD_HEADER + 2] ^= 0xff;
        fs::write(&path, data).unwrap();
        let err = FileStorage::<String>::open(&dir.0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_damaged_hard_state_is_an_error_and_a_stale_temp_file_is_ignored() {
        let dir = TempDir::new("hardstate");
        let mut s = open(&dir);
        let hard = HardState {
            term: 2,
            vote: None,
            commit: 0,
        };
        s.set_hard_state(&hard).unwrap();
        drop(s);
        fs::write(dir.0.join(HARD_STATE_TEMP), b"half-written").unwrap();
        assert_eq!(open(&dir).hard_state(), hard);
        fs::write(dir.0.join(HARD_STATE_FILE), b"glraftH1\x05").unwrap();
        assert!(FileStorage::<String>::open(&dir.0).is_err());
    }
}
