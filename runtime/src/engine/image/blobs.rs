//! The content-addressed blob store of an OCI image layout (`blobs/sha256/HEX`, image-spec
//! `image-layout.md`): a blob is written to a temporary file while it is hashed, checked
//! against the digest it was announced with, and renamed into place, so a reader never sees
//! a partial blob and two writers of one blob both succeed. Reads verify the digest again.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::ImageError;
use super::layer::Hashing;

/// The blobs under `<images>/blobs/sha256`.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// The hex part of `sha256:HEX`, if `digest` is exactly that (64 lowercase hex digits);
/// other algorithms are refused, so a digest is always a safe file name.
pub fn sha256_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(h)
        }
        _ => Err(ImageError::BadDigest(digest.to_string())),
    }
}

/// A random suffix for temporary names (pid and 8 random bytes).
pub fn tmp_suffix() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    let r: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{r}", std::process::id())
}

impl Blobs {
    /// The blob store under `images` (`images/blobs/sha256`); touches nothing on disk.
    pub fn new(images: &Path) -> Self {
        Blobs {
            dir: images.join("blobs").join("sha256"),
        }
    }

    /// The directory holding the blobs (`images/blobs/sha256`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `digest` (which need not exist).
    pub fn path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir.join(sha256_hex(digest)?))
    }

    /// Whether the blob is stored.
    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Store everything `r` yields; returns its digest (`sha256:HEX`) and size in bytes.
    /// With `expected`, a different digest is an error and nothing is stored.
    pub fn write(&self, r: impl Read, expected: Option<&str>) -> Result<(String, u64), ImageError> {
        if let Some(d) = expected {
            sha256_hex(d)?;
        }
        fs::create_dir_all(&self.dir).map_err(super::io("create", &self.dir))?;
        let tmp = self.dir.join(format!(".tmp-{}", tmp_suffix()));
        let result = (|| {
            let mut f = fs::File::create(&tmp).map_err(super::io("create", &tmp))?;
            let mut h = Hashing::new(r);
            io::copy(&mut h, &mut f).map_err(super::io("write", &tmp))?;
            f.flush().map_err(super::io("write", &tmp))?;
            let (digest, size) = h.finish().map_err(super::io("write", &tmp))?;
            if let Some(want) = expected
                && want != digest
            {
                return Err(ImageError::DigestMismatch {
                    what: "blob".into(),
                    expected: want.to_string(),
                    actual: digest,
                });
            }
            let dest = self.path(&digest)?;
            fs::rename(&tmp, &dest).map_err(super::io("install", &dest))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Move `file` (already verified to hash to `digest`, on the store's file system) into
    /// the store as that blob; a blob already stored by another writer is kept.
    pub fn install(&self, file: &Path, digest: &str) -> Result<(), ImageError> {
        let dest = self.path(digest)?;
        fs::create_dir_all(&self.dir).map_err(super::io("create", &self.dir))?;
        fs::rename(file, &dest).map_err(super::io("install", &dest))
    }

    /// Store `bytes`; returns their digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<String, ImageError> {
        Ok(self.write(bytes, None)?.0)
    }

    /// The whole blob, verified against its digest; `limit` caps its size in bytes
    /// (manifests and configs are small).
    pub fn read(&self, digest: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest)?;
        let mut stream = self.open(digest)?;
        let mut bytes = Vec::new();
        (&mut stream)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(super::io("read", &path))?;
        if bytes.len() as u64 > limit {
            return Err(ImageError::TooLarge {
                digest: digest.to_string(),
                limit,
            });
        }
        let (actual, _) = stream.finish().map_err(super::io("read", &path))?;
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("stored blob {}", path.display()),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The blob as a stream that hashes what it yields: call [`Hashing::finish`] and compare
    /// with [`check`] once done with it.
    pub fn open(&self, digest: &str) -> Result<Hashing<fs::File>, ImageError> {
        let path = self.path(digest)?;
        let f = fs::File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::MissingBlob(digest.to_string()),
            _ => ImageError::Io {
                what: "open",
                path: path.clone(),
                source: e,
            },
        })?;
        Ok(Hashing::new(f))
    }

    /// Every stored digest.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                return Err(ImageError::Io {
                    what: "list",
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        Ok(rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(|n| format!("sha256:{n}")))
            .filter(|d| sha256_hex(d).is_ok())
            .collect())
    }

    /// Remove a blob; a missing one is fine.
    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        let p = self.path(digest)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::Io {
                what: "remove",
                path: p,
                source: e,
            }),
        }
    }
}

/// `actual` (from [`Hashing::finish`]) must be `expected`; `what` names the blob.
pub fn check(what: &str, expected: &str, actual: &str) -> Result<(), ImageError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_stored_by_its_digest_and_verified_on_read() {
        let t = tempfile::tempdir().unwrap();
        let b = Blobs::new(t.path());
        let d = b.write_bytes(b"hello").unwrap();
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(b.read(&d, 100).unwrap(), b"hello");
        fs::write(b.path(&d).unwrap(), b"jello").unwrap();
        let e = b.read(&d, 100).unwrap_err().to_string();
        assert!(e.contains("does not match its digest"), "{e}");
        let e = b.write(&b"x"[..], Some(&d)).unwrap_err().to_string();
        assert!(e.contains("does not match its digest"), "{e}");
        assert_eq!(
            b.list().unwrap(),
            vec![d.clone()],
            "no temp file left behind"
        );
        assert!(sha256_hex("sha256:../../etc").is_err());
    }
}
