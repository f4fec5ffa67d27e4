//! Container logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-12-02T01:35:59.123456789Z"}`, in
//! `<data-root>/containers/<id>/<id>-json.log`. The monitor writes them from the
//! container's stdout and stderr pipes, kept apart by `stream`; `rwasm logs` reads them.
//! As Docker's, a line longer than 16 KiB is split into several entries (only the last
//! ends in `\n`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Most bytes of one log entry (Docker's json-file splits longer lines at 16 KiB).
pub const MAX_ENTRY: usize = 16 * 1024;

/// One log entry (a line, or part of a long one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The bytes written (UTF-8, invalid sequences replaced), `\n` included when it ended the line.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 time with nanoseconds, UTC, when the monitor read it.
    pub time: String,
}

impl Entry {
    /// The entry's time; `None` if it does not parse.
    pub fn when(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(self.time.trim_end_matches('Z')).ok()
    }
}

/// Error of reading or writing a log file; names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} log file {path}")]
pub struct LogError {
    /// `open`, `read`, `write`.
    pub what: &'static str,
    /// The log file.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// The writer side: entries from several streams appended to one file, whole lines at a time.
pub struct LogWriter {
    file: Mutex<File>,
    path: PathBuf,
}

impl LogWriter {
    /// Open (create, append) the log file at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>, LogError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LogError {
                what: "open",
                path: path.into(),
                source,
            })?;
        Ok(Arc::new(LogWriter {
            file: Mutex::new(file),
            path: path.into(),
        }))
    }

    /// Append one entry of `stream` holding `bytes`.
    pub fn write(&self, stream: &str, bytes: &[u8]) -> Result<(), LogError> {
        let e = Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.into(),
            time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        };
        let mut line = serde_json::to_vec(&e).expect("entries serialize");
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line).map_err(|source| LogError {
            what: "write",
            path: self.path.clone(),
            source,
        })
    }
}

/// Copy `reader` (a container's stdout or stderr pipe) into `log` as `stream` entries,
/// one per line (split at [`MAX_ENTRY`]), until end of file; a trailing partial line is
/// written as it is.
pub fn pump(reader: impl Read, stream: &str, log: &LogWriter) {
    pump_tee(reader, stream, log, &|_| {});
}

/// [`pump`], and every chunk read also handed to `tee` as soon as it is read (attached
/// clients see a prompt that no newline ended yet).
pub fn pump_tee(mut reader: impl Read, stream: &str, log: &LogWriter, tee: &dyn Fn(&[u8])) {
    let mut buf = vec![0u8; MAX_ENTRY];
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let write = |line: &[u8]| {
        if let Err(e) = log.write(stream, line) {
            tracing::warn!("{}", crate::error_chain(&e));
        }
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("reading the container's {stream}: {e}");
                break;
            }
        };
        tee(&buf[..n]);
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let room = rest.len().min(MAX_ENTRY - line.len());
            let take = rest[..room]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(room, |i| i + 1);
            line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if line.ends_with(b"\n") || line.len() == MAX_ENTRY {
                write(&line);
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        write(&line);
    }
}

/// Reads entries from a log file, from an offset on, whole lines only.
pub struct LogReader {
    path: PathBuf,
    offset: u64,
}

impl LogReader {
    /// A reader of `path` from its start.
    pub fn new(path: &Path) -> Self {
        LogReader {
            path: path.into(),
            offset: 0,
        }
    }

    /// A reader of `path` from its current end (what is written from now on).
    pub fn at_end(path: &Path) -> Self {
        let offset = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogReader {
            path: path.into(),
            offset,
        }
    }

    /// The entries written since the last call; a file that does not exist (yet) has none.
    /// A line that does not parse is skipped with a warning.
    pub fn next_batch(&mut self) -> Result<Vec<Entry>, LogError> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(source) => {
                return Err(LogError {
                    what: "open",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let err = |source| LogError {
            what: "read",
            path: self.path.clone(),
            source,
        };
        f.seek(SeekFrom::Start(self.offset)).map_err(err)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(err)?;
        let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        let mut out = Vec::new();
        for l in buf[..whole]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            match serde_json::from_slice::<Entry>(l) {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!("{}: skipping a malformed line: {e}", self.path.display()),
            }
        }
        Ok(out)
    }
}

/// Parse `--since`/`--until` as Docker does: an RFC 3339 time (`2026-12-02T01:00:00Z`,
/// with or without the zone: UTC), a Unix timestamp in seconds (`1733101200`, fractions
/// allowed), or a duration before now (`10m`, `1h30m`, `42s`).
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return now
            .checked_sub(d)
            .ok_or_else(|| format!("--since {s:?}: too far back"));
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).map_err(|_| {
        format!("invalid value {s:?} for --since: use a time (2026-12-02T01:00:00Z), a Unix timestamp, or a duration (10m)")
    })
}

/// The entries `logs --since T --tail N` shows of `all`: those at or after `since`, then
/// the last `tail` of them (`None`: all).
pub fn select(all: Vec<Entry>, since: Option<SystemTime>, tail: Option<usize>) -> Vec<Entry> {
    let mut v: Vec<Entry> = match since {
        Some(t) => all
            .into_iter()
            .filter(|e| e.when().is_none_or(|w| w >= t))
            .collect(),
        None => all,
    };
    if let Some(n) = tail
        && v.len() > n
    {
        v.drain(..v.len() - n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pump_writes_lines_per_stream_and_reader_reads_them_back() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x-json.log");
        let w = LogWriter::open(&p).unwrap();
        pump(&b"one\ntwo\npartial"[..], "stdout", &w);
        pump(&b"err\n"[..], "stderr", &w);
        let mut r = LogReader::new(&p);
        let v = r.next_batch().unwrap();
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stdout", "one\n"),
                ("stdout", "two\n"),
                ("stdout", "partial"),
                ("stderr", "err\n")
            ]
        );
        assert!(v[0].when().is_some(), "{}", v[0].time);
        assert!(r.next_batch().unwrap().is_empty(), "nothing new");
        w.write("stdout", b"three\n").unwrap();
        assert_eq!(r.next_batch().unwrap()[0].log, "three\n");
        let tail = select(LogReader::new(&p).next_batch().unwrap(), None, Some(2));
        assert_eq!(tail[0].log, "err\n");
        assert_eq!(tail.len(), 2);
    }

    #[test]
    fn long_lines_are_split_at_16k() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("l.log");
        let w = LogWriter::open(&p).unwrap();
        let mut line = vec![b'a'; MAX_ENTRY + 10];
        line.push(b'\n');
        pump(&line[..], "stdout", &w);
        let v = LogReader::new(&p).next_batch().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].log.len(), MAX_ENTRY);
        assert_eq!(v[1].log.len(), 11);
    }

    #[test]
    fn since_accepts_docker_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_since("10m", now).unwrap(),
            now - Duration::from_secs(600)
        );
        assert_eq!(
            parse_since("999000", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(999_000)
        );
        assert_eq!(
            parse_since("1970-01-12T13:46:40Z", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
