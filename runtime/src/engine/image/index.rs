//! `index.json` of the store's image layout: one manifest descriptor per tag (annotation
//! `org.opencontainers.image.ref.name` = `REPOSITORY:TAG`), and one without the annotation
//! for an untagged ("dangling", `<none>`) image. Updates are made under an exclusive
//! `flock` on `index.lock` and written atomically (temp file + rename); readers need no lock.
//!
//! A second lock, `gc.lock`, is held shared by every writer of blobs and layers for the
//! whole operation and exclusively by garbage collection (`rmi`, `image prune`), so a
//! collection never removes a blob that a concurrent load has written but not yet indexed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};

use super::{ImageError, io};

/// The annotation naming a manifest's tag in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker's) annotation for the fully qualified image name.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// A held lock; released when dropped.
pub struct Lock {
    _flock: Flock<fs::File>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lock")
    }
}

/// `path` opened (created with its directory if missing) to be flocked.
fn lock_file(path: &Path) -> Result<fs::File, ImageError> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(io("create", d))?;
    }
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("open", path))?;
    Ok(f)
}

/// Take `path`'s flock, exclusive or shared, waiting for it.
pub fn lock(path: &Path, exclusive: bool) -> Result<Lock, ImageError> {
    let f = lock_file(path)?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let flock = Flock::lock(f, arg).map_err(|(_, e)| ImageError::Io {
        what: "lock",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(Lock { _flock: flock })
}

/// Take `path`'s exclusive flock if no one holds it; `None` when someone does.
pub fn try_lock(path: &Path) -> Result<Option<Lock>, ImageError> {
    let f = lock_file(path)?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => Ok(Some(Lock { _flock: flock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(ImageError::Io {
            what: "lock",
            path: path.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// The store's `index.json`, and beside it `repodigests.json`: for each manifest digest,
/// the `REPOSITORY@sha256:..` names it was pulled as (Docker's RepoDigests; the digest is
/// the one the registry's tag resolved to, an index's for a multi-platform image).
#[derive(Debug, Clone)]
pub struct Index {
    path: PathBuf,
    lock: PathBuf,
    repo_digests: PathBuf,
}

/// One image in the index: its manifest digest and tags (empty when dangling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `sha256:HEX` of the manifest.
    pub manifest: String,
    /// `REPOSITORY:TAG` names, sorted.
    pub tags: Vec<String>,
}

fn empty() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .expect("static index")
}

impl Index {
    /// The index of the layout at `images`; touches nothing on disk.
    pub fn new(images: &Path) -> Self {
        Index {
            path: images.join("index.json"),
            lock: images.join("index.lock"),
            repo_digests: images.join("repodigests.json"),
        }
    }

    /// The index as stored (empty when there is none yet).
    pub fn read(&self) -> Result<ImageIndex, ImageError> {
        match fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| ImageError::Json {
                what: self.path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(empty()),
            Err(e) => Err(ImageError::Io {
                what: "read",
                path: self.path.clone(),
                source: e,
            }),
        }
    }

    /// The images, grouped by manifest, in index order.
    pub fn entries(&self) -> Result<Vec<Entry>, ImageError> {
        Ok(group(&self.read()?))
    }

    /// Change the index under its lock and write it back atomically.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut Vec<Descriptor>) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let _l = lock(&self.lock, true)?;
        let mut index = self.read()?;
        let mut manifests = index.manifests().clone();
        let out = f(&mut manifests)?;
        index.set_manifests(manifests);
        let bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
        super::write_atomic(&self.path, &bytes)?;
        Ok(out)
    }
}

impl Index {
    /// `repodigests.json`: manifest digest to its `REPOSITORY@sha256:..` names (empty when
    /// there is none yet).
    pub fn repo_digests(&self) -> Result<HashMap<String, Vec<String>>, ImageError> {
        match fs::read(&self.repo_digests) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| ImageError::Json {
                what: self.repo_digests.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(ImageError::Io {
                what: "read",
                path: self.repo_digests.clone(),
                source: e,
            }),
        }
    }

    /// Change `repodigests.json` under the index lock and write it back atomically.
    pub fn update_repo_digests(
        &self,
        f: impl FnOnce(&mut HashMap<String, Vec<String>>),
    ) -> Result<(), ImageError> {
        let _l = lock(&self.lock, true)?;
        let mut m = self.repo_digests()?;
        f(&mut m);
        let bytes = serde_json::to_vec_pretty(&m).expect("repo digests serialize");
        super::write_atomic(&self.repo_digests, &bytes)
    }

    /// Record that `manifest` was pulled as `repo_digest` (`REPOSITORY@sha256:..`); a
    /// repository keeps only its newest digest for one manifest.
    pub fn add_repo_digest(&self, manifest: &str, repo_digest: &str) -> Result<(), ImageError> {
        let repo = repo_digest.split('@').next().unwrap_or(repo_digest);
        self.update_repo_digests(|m| {
            let v = m.entry(manifest.to_string()).or_default();
            v.retain(|d| d.split('@').next() != Some(repo));
            v.push(repo_digest.to_string());
            v.sort();
        })
    }
}

/// The tag of a descriptor, if it has one.
pub fn tag_of(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

/// Group descriptors by manifest digest.
pub fn group(index: &ImageIndex) -> Vec<Entry> {
    let mut order: Vec<String> = Vec::new();
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    for d in index.manifests() {
        let digest = d.digest().to_string();
        if !tags.contains_key(&digest) {
            order.push(digest.clone());
        }
        let t = tags.entry(digest).or_default();
        if let Some(n) = tag_of(d) {
            t.push(n.to_string());
        }
    }
    order
        .into_iter()
        .map(|m| {
            let mut t = tags.remove(&m).unwrap_or_default();
            t.sort();
            t.dedup();
            Entry {
                manifest: m,
                tags: t,
            }
        })
        .collect()
}

/// A manifest descriptor, tagged `tag` if given.
pub fn descriptor(manifest: &str, size: u64, tag: Option<&str>) -> Result<Descriptor, ImageError> {
    let digest: oci_spec::image::Digest = manifest
        .parse()
        .map_err(|_| ImageError::BadDigest(manifest.to_string()))?;
    let mut d = Descriptor::new(MediaType::ImageManifest, size, digest);
    if let Some(t) = tag {
        d.set_annotations(Some(HashMap::from([(REF_NAME.to_string(), t.to_string())])));
    }
    Ok(d)
}

/// Point `tag` at `manifest` in `manifests`: the tag leaves any other image (which stays
/// as a dangling image if it had no other tag), as `docker tag` does.
pub fn set_tag(
    manifests: &mut Vec<Descriptor>,
    manifest: &str,
    size: u64,
    tag: &str,
) -> Result<(), ImageError> {
    let mut orphaned = Vec::new();
    manifests.retain(|d| {
        if tag_of(d) == Some(tag) {
            if d.digest().to_string() != manifest {
                orphaned.push(d.clone());
            }
            false
        } else {
            true
        }
    });
    // An untagged entry of the image itself is replaced by the tag.
    manifests.retain(|d| !(d.digest().to_string() == manifest && tag_of(d).is_none()));
    manifests.push(descriptor(manifest, size, Some(tag))?);
    for o in orphaned {
        let m = o.digest().to_string();
        if !manifests.iter().any(|d| d.digest().to_string() == m) {
            manifests.push(descriptor(&m, o.size(), None)?);
        }
    }
    Ok(())
}

/// Record `manifest` untagged unless the index already holds it.
pub fn add_untagged(
    manifests: &mut Vec<Descriptor>,
    manifest: &str,
    size: u64,
) -> Result<(), ImageError> {
    if !manifests.iter().any(|d| d.digest().to_string() == manifest) {
        manifests.push(descriptor(manifest, size, None)?);
    }
    Ok(())
}
