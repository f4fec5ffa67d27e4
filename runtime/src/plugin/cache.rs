//! The compile cache's file handling: names, a private directory, atomic writes.
//!
//! Artifacts are `<cache-dir>/<sha256(wasm)>-<engine-hash>.cwasm`, where `engine-hash` is the
//! first 16 hex digits of the SHA-256 of wasmtime's `precompile_compatibility_hash()` (the
//! wasmtime version and every compilation-relevant setting). Loading an artifact is
//! `unsafe` in wasmtime, so the host only trusts a directory that [`private_dir`] accepts.
//!
//! So that a load need not read and hash the `.wasm` every time, the directory also holds
//! one small index file per source file, `src-<dev>-<inode>.idx`, recording the file's
//! size, mtime and ctime (ns) and its SHA-256. A load `fstat`s the open `.wasm`; when the
//! index matches all of them, its digest names the artifact, else the file is read and
//! hashed and the index rewritten. ctime cannot be set from user space, so a changed file
//! does not match. As in git's "racy" rule, a file changed within [`RACY`] of indexing is
//! not indexed (the coarse file clock could hide a second change within the same tick).
//!
//! wasmtime does not checksum the code of an artifact, so each artifact has a sidecar
//! `<artifact>.sum` with its length and CRC-32 (`rwasm-cwasm-sum 1\n<len> <crc32>\n`),
//! written after the artifact. A load reads the artifact once to verify it
//! ([`verify_artifact`]) before wasmtime maps it; a missing or mismatched sum means a
//! corrupt entry (a flipped bit, a torn write, an artifact from before sums), which the
//! host recompiles and replaces.

use std::fs;
use std::hash::Hasher;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Lowercase hex of the SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A [`Hasher`] that feeds everything into SHA-256, so that a `Hash` value gives the same
/// digest in every process and every Rust release (unlike `DefaultHasher`).
#[derive(Default)]
pub(crate) struct StableHasher(Sha256);

impl StableHasher {
    /// The first 16 hex digits of the digest.
    pub(crate) fn short_hex(self) -> String {
        let digest = self.0.finalize();
        hex(&digest[..8])
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The artifact's file name for a component digest and an engine hash.
pub(crate) fn artifact_path(dir: &Path, wasm_digest: &str, engine_hash: &str) -> PathBuf {
    dir.join(format!("{wasm_digest}-{engine_hash}.cwasm"))
}

/// The checksum sidecar of an artifact.
pub(crate) fn sum_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".sum");
    PathBuf::from(name)
}

const SUM_MAGIC: &str = "rwasm-cwasm-sum 1";

fn sum_line(bytes: &[u8]) -> String {
    format!("{} {:08x}", bytes.len(), crc32fast::hash(bytes))
}

/// Writes an artifact and then its checksum sidecar, each atomically.
pub(crate) fn write_artifact(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes)?;
    write_atomic(
        &sum_path(path),
        format!("{SUM_MAGIC}\n{}\n", sum_line(bytes)).as_bytes(),
    )
}

/// What [`verify_artifact`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verified {
    /// The artifact exists and matches its checksum.
    Good,
    /// There is no artifact.
    Missing,
    /// The artifact exists but its checksum is missing, unreadable or different.
    Corrupt(String),
}

/// Checks the artifact at `path` against its sidecar checksum: its length and CRC-32,
/// and, once the artifact has been verified at least [`RACY`] after its last change, its
/// [`SourceId`] (device, inode, size, mtime, ctime) at that verification. While that
/// identity still matches, the artifact is the file that was verified and is not read
/// again (a cache hit then costs a `stat` instead of reading and summing the whole
/// artifact, ~0.3 ms for a 0.5 MB one): any write to it, in place or by replacing it,
/// changes its ctime or inode, and ctime cannot be set back from user space.
pub(crate) fn verify_artifact(path: &Path) -> Verified {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Verified::Missing,
        Err(e) => return Verified::Corrupt(format!("cannot read the artifact: {e}")),
    };
    let id = SourceId::of(&meta);
    let recorded = match fs::read_to_string(sum_path(path)) {
        Ok(text) => text,
        Err(e) => return Verified::Corrupt(format!("cannot read its checksum: {e}")),
    };
    let mut lines = recorded.lines();
    if lines.next() != Some(SUM_MAGIC) {
        return Verified::Corrupt("its checksum file is not in a known format".to_string());
    }
    let Some(sum) = lines.next() else {
        return Verified::Corrupt("its checksum file is truncated".to_string());
    };
    let verified_as = lines.next().and_then(|l| l.strip_prefix("verified "));
    if verified_as == Some(id.line().as_str()) {
        return Verified::Good;
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Verified::Corrupt(format!("cannot read the artifact: {e}")),
    };
    let actual = sum_line(&bytes);
    if sum != actual {
        return Verified::Corrupt(format!(
            "checksum mismatch: recorded `{sum}` (length crc32), found `{actual}`"
        ));
    }
    if !id.is_racy() {
        // Best effort: a cache this process may not write is verified in full each time.
        let text = format!("{SUM_MAGIC}\n{sum}\nverified {}\n", id.line());
        let _ = write_atomic(&sum_path(path), text.as_bytes());
    }
    Verified::Good
}

/// A source file is not indexed while its last change is more recent than this.
pub(crate) const RACY: Duration = Duration::from_secs(2);

/// What identifies one version of a source file: if all of it matches, the content is
/// taken to be unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl SourceId {
    pub(crate) fn of(meta: &fs::Metadata) -> SourceId {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        SourceId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns
        )
    }

    /// Whether the file changed less than [`RACY`] before now.
    fn is_racy(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        let racy = i128::try_from(RACY.as_nanos()).unwrap_or(i128::MAX);
        now.saturating_sub(self.mtime_ns.max(self.ctime_ns)) < racy
    }
}

fn index_path(dir: &Path, id: &SourceId) -> PathBuf {
    dir.join(format!("src-{}-{}.idx", id.dev, id.ino))
}

const INDEX_MAGIC: &str = "rwasm-cache-index 1";

/// The recorded SHA-256 (hex) of the source file `id`, if the index has it for exactly
/// this version of the file.
pub(crate) fn index_lookup(dir: &Path, id: &SourceId) -> Option<String> {
    let text = fs::read_to_string(index_path(dir, id)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != INDEX_MAGIC || lines.next()? != id.line() {
        return None;
    }
    let digest = lines.next()?;
    let valid = digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| digest.to_string())
}

/// The digest the index holds for the file `id` names (its device and inode), whatever
/// version of the file it was recorded for.
pub(crate) fn index_recorded(dir: &Path, id: &SourceId) -> Option<String> {
    let text = fs::read_to_string(index_path(dir, id)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != INDEX_MAGIC {
        return None;
    }
    lines.next()?;
    lines.next().map(str::to_string)
}

/// Records `digest` for the source file `id` (atomically), unless the file changed too
/// recently to be trusted ([`RACY`]). Returns whether it was recorded.
pub(crate) fn index_store(dir: &Path, id: &SourceId, digest: &str) -> io::Result<bool> {
    if id.is_racy() {
        return Ok(false);
    }
    let text = format!("{INDEX_MAGIC}\n{}\n{digest}\n", id.line());
    write_atomic(&index_path(dir, id), text.as_bytes())?;
    Ok(true)
}

/// Why a cache directory is not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheDirError {
    #[error("cannot create cache directory {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cache directory {} is not private (owner uid {uid}, mode {mode:o}); not using it", path.display())]
    NotPrivate { path: PathBuf, uid: u32, mode: u32 },
}

/// Creates `dir` (mode 0700) if needed and checks that it is a directory owned by this
/// process's effective user and writable by nobody else.
pub(crate) fn private_dir(dir: &Path) -> Result<(), CacheDirError> {
    let create = |source| CacheDirError::Create {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(create)?;
    let meta = fs::symlink_metadata(dir).map_err(create)?;
    let uid = nix::unistd::geteuid().as_raw();
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != uid || mode & 0o022 != 0 {
        return Err(CacheDirError::NotPrivate {
            path: dir.to_path_buf(),
            uid: meta.uid(),
            mode,
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file (mode 0600) in the same directory,
/// flushed to disk, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    #[test]
    fn stable_hash_is_stable() {
        let mut h = StableHasher::default();
        ("engine", 48u32).hash(&mut h);
        let a = h.short_hex();
        let mut h = StableHasher::default();
        ("engine", 48u32).hash(&mut h);
        assert_eq!(a, h.short_hex());
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn index_matches_only_the_same_version_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("p.wasm");
        fs::write(&src, b"one").unwrap();
        let old = filetime_back(&src);
        let id = SourceId::of(&fs::metadata(&src).unwrap());
        assert!(id.is_racy(), "ctime was just set");
        let digest = sha256_hex(b"one");
        assert!(!index_store(tmp.path(), &id, &digest).unwrap());
        assert_eq!(index_lookup(tmp.path(), &id), None);
        // Pretend the file is old enough.
        let aged = SourceId {
            ctime_ns: old,
            ..id
        };
        assert!(index_store(tmp.path(), &aged, &digest).unwrap());
        assert_eq!(index_lookup(tmp.path(), &aged), Some(digest.clone()));
        for other in [
            SourceId { size: 4, ..aged },
            SourceId {
                mtime_ns: aged.mtime_ns + 1,
                ..aged
            },
            SourceId {
                ctime_ns: aged.ctime_ns + 1,
                ..aged
            },
        ] {
            assert_eq!(index_lookup(tmp.path(), &other), None, "{other:?}");
        }
        fs::write(index_path(tmp.path(), &aged), "garbage").unwrap();
        assert_eq!(index_lookup(tmp.path(), &aged), None);
    }

    /// Sets the file's mtime an hour back and returns it (ns); ctime stays "now".
    fn filetime_back(path: &Path) -> i128 {
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let meta = fs::metadata(path).unwrap();
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
    }

    #[test]
    fn artifacts_are_verified_against_their_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        let file = artifact_path(tmp.path(), "abc", "def");
        assert_eq!(verify_artifact(&file), Verified::Missing);
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        write_artifact(&file, &bytes).unwrap();
        assert_eq!(verify_artifact(&file), Verified::Good);
        let mut flipped = bytes.clone();
        flipped[5000] ^= 1;
        write_atomic(&file, &flipped).unwrap();
        assert!(
            matches!(verify_artifact(&file), Verified::Corrupt(ref r) if r.starts_with("checksum mismatch")),
            "{:?}",
            verify_artifact(&file)
        );
        write_artifact(&file, &bytes).unwrap();
        fs::remove_file(sum_path(&file)).unwrap();
        assert!(matches!(verify_artifact(&file), Verified::Corrupt(_)));
    }

    /// An artifact verified after it settled is recognised by its identity later; a
    /// change to it (here: in place, same length) is still caught.
    #[test]
    fn settled_artifacts_are_recognised_and_changes_still_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let file = artifact_path(tmp.path(), "abc", "def");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        write_artifact(&file, &bytes).unwrap();
        assert_eq!(verify_artifact(&file), Verified::Good);
        // Just written: racy, so no identity is recorded yet.
        let sum = fs::read_to_string(sum_path(&file)).unwrap();
        assert_eq!(sum.lines().count(), 2, "{sum}");
        filetime_back(&file);
        // ctime is still "now", so it stays racy; wait out RACY.
        std::thread::sleep(RACY + Duration::from_millis(100));
        assert_eq!(verify_artifact(&file), Verified::Good);
        let sum = fs::read_to_string(sum_path(&file)).unwrap();
        let id = SourceId::of(&fs::metadata(&file).unwrap());
        assert_eq!(
            sum.lines().nth(2),
            Some(format!("verified {}", id.line()).as_str())
        );
        assert_eq!(verify_artifact(&file), Verified::Good);
        // Flip one byte in place: same inode and length, new ctime.
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::options().write(true).open(&file).unwrap();
        f.seek(SeekFrom::Start(5000)).unwrap();
        f.write_all(&[bytes[5000] ^ 1]).unwrap();
        drop(f);
        assert!(
            matches!(verify_artifact(&file), Verified::Corrupt(ref r) if r.starts_with("checksum mismatch")),
            "{:?}",
            verify_artifact(&file)
        );
    }

    #[test]
    fn private_dir_and_atomic_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let file = artifact_path(&dir, "abc", "def");
        write_atomic(&file, b"hello").unwrap();
        write_atomic(&file, b"world").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"world");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary files left"
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            private_dir(&dir),
            Err(CacheDirError::NotPrivate { .. })
        ));
    }
}
