//! The compile cache's file handling: names, a private directory, atomic writes.
//!
//! Artifacts are `<cache-dir>/<sha256(wasm)>-<engine-hash>.cwasm`, where `engine-hash` is the
//! first 16 hex digits of the SHA-256 of wasmtime's `precompile_compatibility_hash()` (the
//! wasmtime version and every compilation-relevant setting). Loading an artifact is
//! `unsafe` in wasmtime, so the host only trusts a directory that [`private_dir`] accepts.

use std::fs;
use std::hash::Hasher;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

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
