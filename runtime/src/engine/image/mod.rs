//! Images: a content-addressed store in OCI image-layout form under
//! `<data-root>/images` (`oci-layout`, `index.json`, `blobs/sha256/HEX`), with every
//! layer unpacked once into `layers/DIFFID-HEX`, shared by every image and container that
//! uses it (overlay lower directories). A rootfs directory given by path still works as
//! an image without config.
//!
//! Modules: [`blobs`] (the blob store), [`index`] (tags, locks), [`reference`] (names),
//! [`layer`] (safe unpacking), [`import`] (`import`, the built-in busybox image),
//! [`archive`] (`load`, `save`), [`pull`] (`pull` from a registry), [`registry`] (insecure
//! registries, credentials), [`manage`] (`tag`, `rmi`, `image prune`, listing),
//! [`defaults`] (an image config as `run` defaults).

pub mod archive;
pub mod blobs;
pub mod defaults;
pub mod import;
pub mod index;
pub mod layer;
pub mod manage;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod usage;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use blobs::{Blobs, check, sha256_hex};
use index::{Entry, Index, Lock, lock};
use layer::{LayerError, decompress};
use reference::Reference;

/// Where the busybox binary comes from (Debian package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";
/// Annotation on a container's config.json: the manifest digest of its image, which keeps
/// the image's blobs and layers alive while the container exists.
pub const IMAGE_MANIFEST_ANNOTATION: &str = "org.rwasm.image-manifest";
/// Annotation on a container's config.json: its image ID (the config digest, Docker's ID).
pub const IMAGE_ID_ANNOTATION: &str = "org.rwasm.image-id";
/// Annotation on a container's config.json: the image's ExposedPorts, comma-separated
/// (`80/tcp,53/udp`), recorded as Docker records them (nothing is published).
pub const EXPOSED_PORTS_ANNOTATION: &str = "org.rwasm.exposed-ports";
/// Most bytes a manifest, index or config blob may hold (4 MiB, as containerd's limit).
pub const MAX_JSON_BLOB: u64 = 4 << 20;

/// Image errors; each names the image, blob, file or entry.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image of that name, ID or digest; carries the name as given.
    #[error(
        "image {0:?} not found: load, import or pull it (the built-in busybox image is made by `rwasm setup`); a rootfs directory may be given by path"
    )]
    NotFound(String),
    /// An ID prefix names more than one image.
    #[error("image ID prefix {0:?} is ambiguous: give more digits")]
    Ambiguous(String),
    /// A reference does not parse as Docker's `[REGISTRY/]REPO[:TAG][@DIGEST]`.
    #[error("invalid reference format {reference:?}: {reason}")]
    BadReference {
        /// The reference as given.
        reference: String,
        /// What is wrong, in Docker's words where it has them.
        reason: String,
    },
    /// A digest is not `sha256:` and 64 lowercase hex digits.
    #[error("unsupported or malformed digest {0:?}: rwasm stores sha256 digests")]
    BadDigest(String),
    /// Content does not hash to the digest that names it.
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob, layer or file, e.g. `stored blob /var/lib/rwasm/images/blobs/sha256/..`.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of what was read.
        actual: String,
    },
    /// A blob the image refers to is not in the store.
    #[error("blob {0} is missing from the image store")]
    MissingBlob(String),
    /// A manifest or config blob is larger than [`MAX_JSON_BLOB`].
    #[error("blob {digest} is larger than {limit} bytes")]
    TooLarge {
        /// The blob.
        digest: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// A manifest, index, config or archive JSON file does not parse.
    #[error("malformed {what}")]
    Json {
        /// The file or blob, e.g. `manifest sha256:..`, `manifest.json of x.tar`.
        what: String,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A layer cannot be unpacked (an entry escapes, a link dangles, a write fails).
    #[error("layer {diff_id}")]
    Layer {
        /// The layer's diff ID.
        diff_id: String,
        /// What went wrong, naming the entry.
        #[source]
        source: LayerError,
    },
    /// An archive given to `load` is neither a `docker save` archive nor an OCI archive,
    /// or lacks a file it lists.
    #[error("{path}: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `rmi` would remove an image that is in use (Docker's "conflict" errors).
    #[error("conflict: unable to {action} {target} ({force}) - {reason}")]
    Conflict {
        /// `delete`, `remove repository reference`.
        action: &'static str,
        /// The name or short ID, quoted as Docker quotes it.
        target: String,
        /// `must force` or `cannot be forced`.
        force: &'static str,
        /// Docker's wording, e.g. `image is being used by stopped container 0123456789ab`.
        reason: String,
    },
    /// A file operation on the image store failed.
    #[error("cannot {what} {path}")]
    Io {
        /// The operation, as a verb: `create`, `read`, `write`, `install`, `remove`, `lock`.
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [`BUSYBOX`] cannot be copied or does not run `busybox --list` (missing or not static).
    #[error("{BUSYBOX} is missing or not static: install Debian's busybox-static")]
    NoBusybox,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { what, path, source }
}

/// Write `bytes` to `path` atomically (a uniquely named temp file, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", blobs::tmp_suffix()));
    let r = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(io("write", path))
}

/// An image read from the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:HEX` of the manifest.
    pub manifest_digest: String,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The manifest.
    pub manifest: ImageManifest,
    /// `sha256:HEX` of the config: the image ID, as Docker shows it.
    pub id: String,
    /// The config.
    pub config: ImageConfiguration,
    /// `REPOSITORY:TAG` names; empty for a dangling image.
    pub tags: Vec<String>,
}

impl Image {
    /// The diff IDs, bottom layer first.
    pub fn diff_ids(&self) -> &[String] {
        self.config.rootfs().diff_ids()
    }
}

/// What `run` needs of an image: its layers and its config.
///
/// While it lives it holds the store's collection lock shared (clones share it), so an
/// `rmi` or `image prune` that would collect these layers waits until the container's
/// config.json names the image (and so keeps it alive): keep it until that file is written.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Unpacked layer directories, bottom layer first (a rootfs path: that one directory).
    pub layers: Vec<PathBuf>,
    /// The image; `None` for a rootfs directory given by path.
    pub image: Option<Image>,
    /// The shared collection lock; `None` for a rootfs directory.
    pub hold: Option<std::sync::Arc<Lock>>,
}

/// The images under `<data-root>/images`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    data_root: PathBuf,
    dir: PathBuf,
    blobs: Blobs,
    index: Index,
}

impl ImageStore {
    /// The store under `<data_root>/images`; touches nothing on disk.
    pub fn new(data_root: &Path) -> Self {
        let dir = data_root.join("images");
        ImageStore {
            data_root: data_root.to_path_buf(),
            blobs: Blobs::new(&dir),
            index: Index::new(&dir),
            dir,
        }
    }

    /// The store's directory (`<data-root>/images`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data root the store lives under.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// The blob store.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// The directory a layer with `diff_id` is (or would be) unpacked into.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.layers_dir().join(sha256_hex(diff_id)?))
    }

    /// The lock every writer holds shared and garbage collection exclusively.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<Lock, ImageError> {
        lock(&self.dir.join("gc.lock"), exclusive)
    }

    /// Create the layout (`oci-layout`, directories) if it is not there yet.
    pub fn init(&self) -> Result<(), ImageError> {
        for d in [
            self.dir.join("blobs/sha256"),
            self.layers_dir(),
            self.tmp_dir(),
        ] {
            fs::create_dir_all(&d).map_err(io("create", &d))?;
        }
        let layout = self.dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(())
    }

    /// Scratch space for archives being read or written.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// The image `name` names: `REPO[:TAG]`, `REPO@sha256:..` (a manifest digest), a full
    /// image ID `sha256:HEX`, or a unique prefix of its hex digits (Docker's short ID).
    pub fn find(&self, name: &str) -> Result<Entry, ImageError> {
        let entries = self.index.entries()?;
        let hexish = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if let Some(h) = name.strip_prefix("sha256:").or(hexish.then_some(name)) {
            let mut hits: Vec<Entry> = Vec::new();
            for e in &entries {
                let id = self.config_digest(&e.manifest)?;
                if id["sha256:".len()..].starts_with(h) && !hits.iter().any(|x| x == e) {
                    hits.push(e.clone());
                }
            }
            match hits.len() {
                1 => return Ok(hits.remove(0)),
                0 if name.starts_with("sha256:") => {
                    return Err(ImageError::NotFound(name.into()));
                }
                0 => {}
                _ => return Err(ImageError::Ambiguous(name.into())),
            }
        }
        let r = Reference::parse(name)?;
        let pulled_as = match &r.digest {
            Some(d) => Some((format!("{}@{d}", r.repository), self.index.repo_digests()?)),
            None => None,
        };
        let hit = entries.into_iter().find(|e| match (&r.digest, r.tagged()) {
            // The image's own manifest digest, or the digest it was pulled as (an index's).
            (Some(d), _) => {
                &e.manifest == d
                    || pulled_as
                        .as_ref()
                        .is_some_and(|(rd, m)| m.get(&e.manifest).is_some_and(|v| v.contains(rd)))
            }
            (None, Some(t)) => e.tags.contains(&t),
            (None, None) => false,
        });
        hit.ok_or_else(|| ImageError::NotFound(name.into()))
    }

    fn config_digest(&self, manifest: &str) -> Result<String, ImageError> {
        Ok(self.manifest(manifest)?.0.config().digest().to_string())
    }

    /// A manifest from the store, verified; with its size in bytes.
    pub fn manifest(&self, digest: &str) -> Result<(ImageManifest, u64), ImageError> {
        let bytes = self.blobs.read(digest, MAX_JSON_BLOB)?;
        let m = serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: format!("manifest {digest}"),
            source,
        })?;
        Ok((m, bytes.len() as u64))
    }

    /// The image of an index entry, manifest and config verified.
    pub fn image(&self, entry: &Entry) -> Result<Image, ImageError> {
        let (manifest, manifest_size) = self.manifest(&entry.manifest)?;
        let id = manifest.config().digest().to_string();
        let bytes = self.blobs.read(&id, MAX_JSON_BLOB)?;
        let config = serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: format!("image config {id}"),
            source,
        })?;
        Ok(Image {
            manifest_digest: entry.manifest.clone(),
            manifest_size,
            manifest,
            id,
            config,
            tags: entry.tags.clone(),
        })
    }

    /// Unpack `layer` (a blob of the store, plain, gzip or zstd) once into its
    /// per-diff-ID directory, verifying both the blob's digest and the diff ID; returns the
    /// directory. A concurrent unpack of the same layer is harmless: the first rename wins.
    pub fn ensure_layer(&self, layer: &Descriptor, diff_id: &str) -> Result<PathBuf, ImageError> {
        let dest = self.layer_dir(diff_id)?;
        if dest.is_dir() {
            return Ok(dest);
        }
        self.init()?;
        let tmp = self
            .layers_dir()
            .join(format!(".tmp-{}", blobs::tmp_suffix()));
        fs::create_dir(&tmp).map_err(io("create", &tmp))?;
        let result = (|| {
            let blob_digest = layer.digest().to_string();
            let mut blob = self.blobs.open(&blob_digest)?;
            let blob_path = self.blobs.path(&blob_digest)?;
            let layer_err = |source| ImageError::Layer {
                diff_id: diff_id.to_string(),
                source,
            };
            let unpacked = (|| {
                let dec = decompress(&mut blob).map_err(LayerError::Read)?;
                let mut h = layer::Hashing::new(dec);
                let size = layer::unpack(&mut h, &tmp)?;
                let (actual, _) = h.finish().map_err(LayerError::Read)?;
                Ok((size, actual))
            })();
            // A corrupt blob is reported as such, even when it also broke the tar stream.
            let (blob_actual, _) = blob.finish().map_err(io("read", &blob_path))?;
            check(
                &format!("stored blob {}", blob_path.display()),
                &blob_digest,
                &blob_actual,
            )?;
            let (size, actual) = unpacked.map_err(layer_err)?;
            check(
                &format!("uncompressed layer {blob_digest}"),
                diff_id,
                &actual,
            )?;
            write_atomic(&dest.with_extension("size"), size.to_string().as_bytes())?;
            match fs::rename(&tmp, &dest) {
                Ok(()) => Ok(()),
                Err(_) if dest.is_dir() => Ok(()), // another writer won
                Err(e) => Err(ImageError::Io {
                    what: "install",
                    path: dest.clone(),
                    source: e,
                }),
            }
        })();
        let _ = fs::remove_dir_all(&tmp);
        result.map(|()| dest)
    }

    /// Unpack (once) every layer of `img`; the directories, bottom layer first.
    pub fn layer_dirs(&self, img: &Image) -> Result<Vec<PathBuf>, ImageError> {
        let layers = img.manifest.layers();
        let diff_ids = img.diff_ids();
        if layers.len() != diff_ids.len() {
            return Err(ImageError::Archive {
                path: self.blobs.path(&img.manifest_digest)?,
                reason: format!(
                    "the manifest lists {} layers but the config {} diff IDs",
                    layers.len(),
                    diff_ids.len()
                ),
            });
        }
        layers
            .iter()
            .zip(diff_ids)
            .map(|(l, d)| self.ensure_layer(l, d))
            .collect()
    }

    /// Bytes of file content in the unpacked layer `diff_id` (0 when not unpacked).
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        self.layer_dir(diff_id)
            .ok()
            .and_then(|d| fs::read_to_string(d.with_extension("size")).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Store a manifest for `config` (already stored, `config_size` bytes) and `layers`
    /// (already stored), unpack its layers, and tag it with `tags` (untagged if none).
    /// Returns the image.
    pub fn commit(
        &self,
        config_digest: &str,
        config_size: u64,
        layers: &[Descriptor],
        tags: &[String],
    ) -> Result<Image, ImageError> {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let digest = self.blobs.write_bytes(&bytes)?;
        self.commit_manifest(&digest, bytes.len() as u64, tags)
    }

    /// Index the stored manifest `digest` under `tags` (untagged if none) after unpacking
    /// its layers; returns the image.
    pub fn commit_manifest(
        &self,
        digest: &str,
        size: u64,
        tags: &[String],
    ) -> Result<Image, ImageError> {
        let entry = Entry {
            manifest: digest.to_string(),
            tags: vec![],
        };
        let img = self.image(&entry)?;
        self.layer_dirs(&img)?;
        self.index.update(|m| {
            if tags.is_empty() {
                index::add_untagged(m, digest, size)
            } else {
                tags.iter()
                    .try_for_each(|t| index::set_tag(m, digest, size, t))
            }
        })?;
        let entry = self
            .index
            .entries()?
            .into_iter()
            .find(|e| e.manifest == digest)
            .ok_or_else(|| ImageError::NotFound(digest.to_string()))?;
        self.image(&entry)
    }

    /// The rootfs layers and config of `image`: a stored image by name or ID, or a rootfs
    /// directory given by path (containing `/` or starting with `.`).
    pub fn resolve(&self, image: &str) -> Result<Resolved, ImageError> {
        if image.starts_with('/') || image.starts_with('.') {
            let p = PathBuf::from(image);
            return if p.is_dir() {
                Ok(Resolved {
                    layers: vec![p.canonicalize().map_err(io("resolve", &p))?],
                    image: None,
                    hold: None,
                })
            } else {
                Err(ImageError::NotFound(image.into()))
            };
        }
        let hold = self.gc_lock(false)?;
        let img = self.image(&self.find(image)?)?;
        Ok(Resolved {
            layers: self.layer_dirs(&img)?,
            image: Some(img),
            hold: Some(std::sync::Arc::new(hold)),
        })
    }
}
