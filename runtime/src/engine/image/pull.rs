//! `rwasm pull REF`: an image from a registry over the OCI distribution API
//! (distribution-spec "Pulling manifests", "Pulling blobs"), through the `oci-client` crate.
//!
//! - The reference is Docker's (`[REGISTRY/]REPO[:TAG][@sha256:..]`, Docker Hub and
//!   `latest` by default). The manifest is asked for as an OCI image manifest or index, or
//!   Docker's v2 schema 2 manifest or manifest list; an index or list is resolved to the
//!   `linux/ARCH` image of this machine (amd64 here; `--platform OS/ARCH` chooses another),
//!   and an index without one is an error that lists what it has. Manifests are verified by digest (the reference's, the
//!   registry's `Docker-Content-Digest`, the index entry's).
//! - Layers may be plain tars, gzip or zstd (OCI and Docker media types); anything else
//!   (an artifact that is not a container image) is refused.
//! - Up to [`CONCURRENT_DOWNLOADS`] blobs download at once. A blob is written to
//!   `images/tmp/pull-HEX.partial` while it is hashed and enters the blob store (a rename)
//!   only when its size and digest match the manifest, so a partial or corrupt download is
//!   never taken as the blob. Each finished layer is unpacked at once, while others still
//!   download. An interrupted pull (killed, network lost) leaves its finished blobs in
//!   the store and its partial file in `tmp/`: the next pull skips the former and asks
//!   the registry for the rest of the latter (an HTTP range request, hashing the bytes it
//!   already has first; a registry that answers with the whole blob is read from the start).
//! - Concurrent pulls: each blob's download holds `tmp/pull-HEX.lock`; a second pull of the
//!   same blob waits for it (shown as `Waiting`) and then finds the blob stored. The whole
//!   pull holds the store's collection lock shared, as `load` does.
//! - The image is stored under the platform manifest's digest and tagged `REPO:TAG` (a
//!   pull by digest adds no tag); the digest the reference resolved to is recorded as
//!   `REPO@sha256:..` (RepoDigests, what `rwasm run REPO@sha256:..` finds).
//! - A blob that does not match its digest fails the pull naming the blob and removes what
//!   the pull stored (no image, no blob of it); other failures keep the finished blobs for
//!   the next try.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::Client;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};

use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use serde_json::Value;
use sha2::Digest as _;

use super::blobs::sha256_hex;
use super::index::try_lock;
use super::reference::Reference;
use super::registry::{Credentials, Insecure, RegistryConfigError, credentials};
use super::{Image, ImageError, ImageStore, MAX_JSON_BLOB, io as io_err};

/// Blobs downloaded at once (Docker's default `max-concurrent-downloads`).
pub const CONCURRENT_DOWNLOADS: usize = 3;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];
const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Why a pull failed; each names the reference as given.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry has no such tag or digest (distribution's `MANIFEST_UNKNOWN`).
    #[error("manifest for {reference} not found: manifest unknown")]
    ManifestUnknown {
        /// The reference.
        reference: String,
        /// The registry's answer.
        #[source]
        source: OciDistributionError,
    },
    /// The registry refused the credentials, or asked for some and none were found.
    #[error("pull access denied for {reference}: unauthorized ({auth})")]
    Unauthorized {
        /// The reference.
        reference: String,
        /// Which credentials were sent: `no credentials for HOST in FILE`, `user U from FILE`.
        auth: String,
        /// The registry's answer.
        #[source]
        source: OciDistributionError,
    },
    /// An index (manifest list) has no image for this machine's platform.
    #[error(
        "no matching manifest for {platform} in the manifest list entries of {reference} (index {digest} has {available})"
    )]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The index's digest.
        digest: String,
        /// The platform asked for, `os/arch` (this machine's, `linux/amd64`, by default).
        platform: String,
        /// The platforms it lists, `os/arch` comma-separated.
        available: String,
    },
    /// A downloaded blob or manifest does not hash to its digest.
    #[error(
        "{reference}: blob {digest} does not match its digest (the download hashes to {actual})"
    )]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// The digest the manifest names.
        digest: String,
        /// What the downloaded bytes hash to.
        actual: String,
    },
    /// A downloaded blob is not as long as the manifest says.
    #[error("{reference}: blob {digest} is {actual} bytes or more, the manifest says {expected}")]
    SizeMismatch {
        /// The reference.
        reference: String,
        /// The blob.
        digest: String,
        /// The size in the manifest, bytes.
        expected: u64,
        /// How many bytes arrived.
        actual: u64,
    },
    /// The manifest is not an image manifest or index rwasm reads.
    #[error("{reference}: unsupported manifest {what}")]
    Unsupported {
        /// The reference.
        reference: String,
        /// What it is: `media type "..."`, `layer sha256:.. of media type "..."`.
        what: String,
    },
    /// A manifest, index or config does not parse.
    #[error("{reference}: malformed {what}")]
    Json {
        /// The reference.
        reference: String,
        /// `manifest sha256:..`, `index sha256:..`, `config sha256:..`.
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Any other failure talking to the registry (connection refused, TLS, 5xx).
    #[error("{reference}: registry {registry}")]
    Registry {
        /// The reference.
        reference: String,
        /// `HOST[:PORT]`, with `(plain HTTP)` when it is reached so.
        registry: String,
        /// What oci-client reported.
        #[source]
        source: OciDistributionError,
    },
    /// Reading a blob's bytes from the registry failed midway.
    #[error("{reference}: downloading blob {digest}")]
    Download {
        /// The reference.
        reference: String,
        /// The blob.
        digest: String,
        /// The transport error.
        #[source]
        source: io::Error,
    },
    /// The image store failed (writing, unpacking, indexing).
    #[error("{reference}")]
    Store {
        /// The reference.
        reference: String,
        /// The store's error.
        #[source]
        source: ImageError,
    },
    /// The registries file or the auth file is malformed.
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    /// The async runtime of the HTTP client cannot be started.
    #[error("cannot start the async runtime of the registry client")]
    Runtime(#[source] io::Error),
}

/// What a layer is doing, in Docker's words (its `docker pull` status lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// Stored and unpacked already: `Already exists`.
    AlreadyExists,
    /// About to download: `Pulling fs layer`.
    Pulling,
    /// Another pull is downloading it: `Waiting`.
    Waiting,
    /// `Downloading`: bytes so far (a resumed download starts at what it had), and total.
    Downloading {
        /// Bytes of the blob on disk so far.
        done: u64,
        /// The blob's size.
        total: u64,
    },
    /// All bytes arrived, checking the digest: `Verifying Checksum`.
    Verifying,
    /// Stored in the blob store: `Download complete`.
    DownloadComplete,
    /// Being unpacked: `Extracting`.
    Extracting,
    /// Unpacked: `Pull complete`.
    PullComplete,
}

/// Where a pull reports its progress (the CLI draws bars or prints lines).
pub trait Progress: Sync {
    /// The manifest is resolved; `from` is the repository path on its registry
    /// (`library/busybox`), for Docker's `TAG: Pulling from PATH` line.
    fn pulling(&self, from: &str);
    /// Layer `id` (the first 12 hex digits of its blob digest, as Docker shows it) moved on.
    fn layer(&self, id: &str, status: LayerStatus);
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Registries reached over plain HTTP.
    pub insecure: Insecure,
    /// The Docker-style auth file to take credentials from
    /// ([`super::registry::default_auth_file`]).
    pub auth_file: Option<PathBuf>,
    /// The platform an index is resolved to, `os/arch` (Docker's `--platform`); `None`:
    /// `linux/` and this machine's OCI architecture.
    pub platform: Option<String>,
}

/// A pulled image.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference as parsed (`latest` filled in).
    pub reference: Reference,
    /// The digest the reference resolved to (an index's for a multi-platform image), for
    /// Docker's `Digest:` line.
    pub digest: String,
    /// `false` when the image was already stored under that reference (`Image is up to date`).
    pub downloaded: bool,
    /// The stored image.
    pub image: Image,
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    let h = digest.strip_prefix("sha256:").unwrap_or(digest);
    &h[..h.len().min(12)]
}

fn sha256_of(bytes: &[u8]) -> String {
    let h = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// One pull: the client, the reference in both crates' forms, what errors name.
struct Session<'a> {
    store: &'a ImageStore,
    client: Client,
    auth: RegistryAuth,
    auth_desc: String,
    remote: oci_client::Reference,
    given: String,
    registry: String,
    progress: &'a dyn Progress,
    /// `os/arch` an index resolves to.
    platform: String,
    /// The partial files this pull wrote to (removed after a digest mismatch).
    partials: std::sync::Mutex<Vec<(PathBuf, PathBuf)>>,
}

impl ImageStore {
    /// `rwasm pull REFERENCE` (see the module): the image stored, unpacked and tagged.
    pub fn pull(
        &self,
        reference: &str,
        options: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<Pulled, PullError> {
        let store_err = |source| PullError::Store {
            reference: reference.to_string(),
            source,
        };
        let r = Reference::parse(reference).map_err(store_err)?;
        // A digest wins over a tag given with it, as in Docker.
        let full = match &r.digest {
            Some(_) => Reference {
                tag: None,
                ..r.clone()
            }
            .full(),
            None => r.full(),
        };
        let remote = oci_client::Reference::try_from(full.as_str()).map_err(|_| {
            store_err(ImageError::BadReference {
                reference: reference.to_string(),
                reason: "invalid reference format".into(),
            })
        })?;
        let registry = remote.registry().to_string();
        let insecure = options.insecure.is_insecure(&registry);
        let creds = credentials(options.auth_file.as_deref(), &registry)?;
        let file = options
            .auth_file
            .as_ref()
            .map_or("no auth file".to_string(), |p| p.display().to_string());
        let (auth, auth_desc) = match creds {
            Credentials::Anonymous => (
                RegistryAuth::Anonymous,
                format!("no credentials for {registry} in {file}"),
            ),
            Credentials::Basic { username, password } => (
                RegistryAuth::Basic(username.clone(), password),
                format!("user {username:?} from {file}"),
            ),
            Credentials::Bearer(t) => (RegistryAuth::Bearer(t), format!("token from {file}")),
        };
        let client = Client::new(ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("rwasm/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        });
        let s = Session {
            store: self,
            client,
            auth,
            auth_desc,
            remote,
            given: reference.to_string(),
            registry: if insecure {
                format!("{registry} (plain HTTP)")
            } else {
                registry
            },
            progress,
            platform: options
                .platform
                .clone()
                .unwrap_or_else(|| format!("linux/{}", super::import::arch())),
            partials: std::sync::Mutex::new(Vec::new()),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(PullError::Runtime)?;
        self.init().map_err(store_err)?;
        let result = {
            let _gc = self.gc_lock(false).map_err(store_err)?;
            let result = rt.block_on(s.run(r));
            // Dropping the runtime waits for the unpacks a failure left running, so that
            // nothing writes into the store once the collection lock is released.
            drop(rt);
            result
        };
        if matches!(
            result,
            Err(PullError::DigestMismatch { .. } | PullError::SizeMismatch { .. })
        ) {
            // The image cannot be had from this registry: keep nothing of it, not even the
            // partial downloads its failure cut short (unless another pull is on them).
            let partials = s.partials.lock().map(|p| p.clone()).unwrap_or_default();
            for (part, lock) in partials {
                if let Ok(Some(_held)) = try_lock(&lock) {
                    let _ = fs::remove_file(&part);
                }
            }
            self.collect_after_failure();
        }
        result
    }
}

impl Session<'_> {
    fn store_err(&self, source: ImageError) -> PullError {
        PullError::Store {
            reference: self.given.clone(),
            source,
        }
    }

    /// A registry error in the words of the reference; a 404 is `manifest unknown` only
    /// for a `manifest` request.
    fn remote_err(&self, source: OciDistributionError, manifest: bool) -> PullError {
        let reference = self.given.clone();
        let codes: Vec<&OciErrorCode> = match &source {
            OciDistributionError::RegistryError { envelope, .. } => {
                envelope.errors.iter().map(|e| &e.code).collect()
            }
            _ => vec![],
        };
        let unknown = codes.iter().any(|c| {
            matches!(
                c,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }) || matches!(source, OciDistributionError::ImageManifestNotFoundError(_))
            || matches!(source, OciDistributionError::ServerError { code: 404, .. });
        let denied = codes
            .iter()
            .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            || matches!(
                source,
                OciDistributionError::UnauthorizedError { .. }
                    | OciDistributionError::AuthenticationFailure(_)
                    | OciDistributionError::ServerError {
                        code: 401 | 403,
                        ..
                    }
            );
        if denied {
            PullError::Unauthorized {
                reference,
                auth: self.auth_desc.clone(),
                source,
            }
        } else if unknown && manifest {
            PullError::ManifestUnknown { reference, source }
        } else {
            PullError::Registry {
                reference,
                registry: self.registry.clone(),
                source,
            }
        }
    }

    fn json_err(&self, what: String) -> impl FnOnce(serde_json::Error) -> PullError + '_ {
        move |source| PullError::Json {
            reference: self.given.clone(),
            what,
            source,
        }
    }

    /// A manifest or index: its bytes, verified against `expect` when given.
    async fn manifest(
        &self,
        at: &oci_client::Reference,
        expect: Option<&str>,
    ) -> Result<(Vec<u8>, String), PullError> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(
                at,
                &self.auth,
                &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST],
            )
            .await
            .map_err(|e| match e {
                OciDistributionError::DigestError(DigestError::VerificationError {
                    expected,
                    actual,
                }) => PullError::DigestMismatch {
                    reference: self.given.clone(),
                    digest: expected,
                    actual,
                },
                e => self.remote_err(e, true),
            })?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return Err(self.store_err(ImageError::TooLarge {
                digest,
                limit: MAX_JSON_BLOB,
            }));
        }
        let actual = sha256_of(&bytes);
        let want = expect.map_or(digest, str::to_string);
        if actual != want {
            return Err(PullError::DigestMismatch {
                reference: self.given.clone(),
                digest: want,
                actual,
            });
        }
        Ok((bytes.to_vec(), actual))
    }

    async fn run(&self, r: Reference) -> Result<Pulled, PullError> {
        let (bytes, top_digest) = self.manifest(&self.remote, self.remote.digest()).await?;
        let top: Value = serde_json::from_slice(&bytes)
            .map_err(self.json_err(format!("manifest {top_digest}")))?;
        let media = top["mediaType"].as_str().unwrap_or_else(|| {
            if top.get("manifests").is_some() {
                OCI_INDEX
            } else {
                OCI_MANIFEST
            }
        });
        let (bytes, digest) = match media {
            OCI_INDEX | DOCKER_LIST => {
                let d = self.platform_manifest(&top, &top_digest)?;
                let at = oci_client::Reference::with_digest(
                    self.remote.registry().to_string(),
                    self.remote.repository().to_string(),
                    d.clone(),
                );
                self.manifest(&at, Some(&d)).await?
            }
            OCI_MANIFEST | DOCKER_MANIFEST => (bytes, top_digest.clone()),
            other => {
                return Err(PullError::Unsupported {
                    reference: self.given.clone(),
                    what: format!("media type {other:?}"),
                });
            }
        };
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(self.json_err(format!("manifest {digest}")))?;
        let mt = manifest.config().media_type().to_string();
        if !CONFIG_TYPES.contains(&mt.as_str()) {
            return Err(PullError::Unsupported {
                reference: self.given.clone(),
                what: format!("config media type {mt:?}: not a container image"),
            });
        }
        for l in manifest.layers() {
            let mt = l.media_type().to_string();
            if !LAYER_TYPES.contains(&mt.as_str()) {
                return Err(PullError::Unsupported {
                    reference: self.given.clone(),
                    what: format!("layer {} of media type {mt:?}", l.digest()),
                });
            }
        }
        let stored_as = match (&r.digest, r.tagged()) {
            (Some(_), _) => r.to_string(),
            (None, Some(t)) => t,
            (None, None) => r.to_string(),
        };
        let before = self.store.find(&stored_as).ok().map(|e| e.manifest);
        self.progress.pulling(self.remote.repository());

        // The config first: its diff IDs are what each layer unpacks to.
        let config = manifest.config().clone();
        if config.size() > MAX_JSON_BLOB {
            return Err(self.store_err(ImageError::TooLarge {
                digest: config.digest().to_string(),
                limit: MAX_JSON_BLOB,
            }));
        }
        self.fetch(&config, false).await?;
        let cfg_bytes = self
            .store
            .blobs()
            .read(config.digest().as_ref(), MAX_JSON_BLOB)
            .map_err(|e| self.store_err(e))?;
        let cfg: ImageConfiguration = serde_json::from_slice(&cfg_bytes)
            .map_err(self.json_err(format!("config {}", config.digest())))?;
        let diff_ids = cfg.rootfs().diff_ids().clone();
        if diff_ids.len() != manifest.layers().len() {
            return Err(PullError::Unsupported {
                reference: self.given.clone(),
                what: format!(
                    "{digest}: it lists {} layers but its config {} diff IDs",
                    manifest.layers().len(),
                    diff_ids.len()
                ),
            });
        }
        let layers: Vec<(Descriptor, String)> = manifest
            .layers()
            .iter()
            .cloned()
            .zip(diff_ids.iter().cloned())
            .collect();
        for (l, d) in &layers {
            let done = self.store.blobs().has(l.digest().as_ref())
                && self.store.layer_dir(d).is_ok_and(|p| p.is_dir());
            self.progress.layer(
                short(l.digest().as_ref()),
                if done {
                    LayerStatus::AlreadyExists
                } else {
                    LayerStatus::Pulling
                },
            );
        }
        futures_util::stream::iter(layers.iter().map(Ok))
            .map_ok(|(l, d)| self.layer(l, d))
            .try_buffer_unordered(CONCURRENT_DOWNLOADS)
            .try_collect::<Vec<()>>()
            .await?;

        self.store
            .blobs()
            .write(&bytes[..], Some(&digest))
            .map_err(|e| self.store_err(e))?;
        let tags: Vec<String> = r
            .tagged()
            .into_iter()
            .filter(|_| r.digest.is_none())
            .collect();
        let image = self
            .store
            .commit_manifest(&digest, bytes.len() as u64, &tags)
            .map_err(|e| self.store_err(e))?;
        self.store
            .index()
            .add_repo_digest(&digest, &format!("{}@{top_digest}", r.repository))
            .map_err(|e| self.store_err(e))?;
        Ok(Pulled {
            downloaded: before.as_deref() != Some(digest.as_str()),
            reference: r,
            digest: top_digest,
            image,
        })
    }

    /// The digest of the index's manifest for the session's platform.
    fn platform_manifest(&self, index: &Value, digest: &str) -> Result<String, PullError> {
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        let platform = |e: &Value| {
            (
                e["platform"]["os"].as_str().unwrap_or("?").to_string(),
                e["platform"]["architecture"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
        };
        entries
            .iter()
            .find(|e| {
                let (o, a) = platform(e);
                format!("{o}/{a}") == self.platform
            })
            .and_then(|e| e["digest"].as_str())
            .map(str::to_string)
            .ok_or_else(|| PullError::NoPlatform {
                reference: self.given.clone(),
                digest: digest.to_string(),
                platform: self.platform.clone(),
                available: if entries.is_empty() {
                    "no entries".into()
                } else {
                    entries
                        .iter()
                        .map(|e| {
                            let (o, a) = platform(e);
                            format!("{o}/{a}")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Download (if needed) and unpack one layer.
    async fn layer(&self, l: &Descriptor, diff_id: &str) -> Result<(), PullError> {
        let id = short(l.digest().as_ref()).to_string();
        let unpacked = self.store.layer_dir(diff_id).is_ok_and(|p| p.is_dir());
        if self.store.blobs().has(l.digest().as_ref()) && unpacked {
            return Ok(());
        }
        self.fetch(l, true).await?;
        self.progress.layer(&id, LayerStatus::Extracting);
        let (store, desc, diff) = (self.store.clone(), l.clone(), diff_id.to_string());
        tokio::task::spawn_blocking(move || store.ensure_layer(&desc, &diff))
            .await
            .map_err(|e| {
                self.store_err(ImageError::Io {
                    what: "unpack",
                    path: self.store.dir().join("layers"),
                    source: io::Error::other(e),
                })
            })?
            .map_err(|e| self.store_err(e))?;
        self.progress.layer(&id, LayerStatus::PullComplete);
        Ok(())
    }

    /// Put blob `d` into the store unless it is there (see the module for locking and resume).
    async fn fetch(&self, d: &Descriptor, report: bool) -> Result<(), PullError> {
        let digest = d.digest().to_string();
        let hex = sha256_hex(&digest).map_err(|e| self.store_err(e))?;
        let id = short(&digest).to_string();
        let say = |s| {
            if report {
                self.progress.layer(&id, s);
            }
        };
        let blobs = self.store.blobs();
        if blobs.has(&digest) {
            say(LayerStatus::DownloadComplete);
            return Ok(());
        }
        let tmp = self.store.tmp_dir();
        let lock_path = tmp.join(format!("pull-{hex}.lock"));
        let mut waited = false;
        let _lock = loop {
            if let Some(l) = try_lock(&lock_path).map_err(|e| self.store_err(e))? {
                break l;
            }
            if !waited {
                say(LayerStatus::Waiting);
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if blobs.has(&digest) {
            // Another pull stored it while this one waited.
            say(LayerStatus::DownloadComplete);
            return Ok(());
        }
        let part = tmp.join(format!("pull-{hex}.partial"));
        if let Ok(mut p) = self.partials.lock() {
            p.push((part.clone(), lock_path.clone()));
        }
        let total = d.size();
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&part)
            .map_err(|e| self.store_err(io_err("open", &part)(e)))?;
        let (mut hasher, mut have) =
            hash_prefix(&mut file, total).map_err(|e| self.store_err(io_err("read", &part)(e)))?;
        let layer = OciDescriptor {
            media_type: d.media_type().to_string(),
            digest: digest.clone(),
            size: i64::try_from(total).unwrap_or(i64::MAX),
            urls: d.urls().clone(),
            ..OciDescriptor::default()
        };
        if have < total {
            let resp = self
                .client
                .pull_blob_stream_partial(&self.remote, &layer, have, None)
                .await
                .map_err(|e| self.remote_err(e, false))?;
            let mut stream = match resp {
                BlobResponse::Partial(s) => s,
                BlobResponse::Full(s) => {
                    // The registry ignored the range: start over.
                    file.set_len(0)
                        .and_then(|()| file.seek(io::SeekFrom::Start(0)).map(|_| ()))
                        .map_err(|e| self.store_err(io_err("write", &part)(e)))?;
                    hasher = sha2::Sha256::new();
                    have = 0;
                    s
                }
            };
            say(LayerStatus::Downloading { done: have, total });
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|source| PullError::Download {
                    reference: self.given.clone(),
                    digest: digest.clone(),
                    source,
                })?;
                have += chunk.len() as u64;
                if have > total {
                    drop(file);
                    let _ = fs::remove_file(&part);
                    return Err(PullError::SizeMismatch {
                        reference: self.given.clone(),
                        digest,
                        expected: total,
                        actual: have,
                    });
                }
                file.write_all(&chunk)
                    .map_err(|e| self.store_err(io_err("write", &part)(e)))?;
                hasher.update(&chunk);
                say(LayerStatus::Downloading { done: have, total });
            }
        }
        say(LayerStatus::Verifying);
        let actual = format!(
            "sha256:{}",
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        drop(file);
        if have != total || actual != digest {
            let _ = fs::remove_file(&part);
            return Err(if have != total {
                PullError::SizeMismatch {
                    reference: self.given.clone(),
                    digest,
                    expected: total,
                    actual: have,
                }
            } else {
                PullError::DigestMismatch {
                    reference: self.given.clone(),
                    digest,
                    actual,
                }
            });
        }
        blobs
            .install(&part, &digest)
            .map_err(|e| self.store_err(e))?;
        // Only once the blob is in place: whoever takes the lock later finds it stored.
        let _ = fs::remove_file(&lock_path);
        say(LayerStatus::DownloadComplete);
        Ok(())
    }
}

/// Hash what an earlier, interrupted download left in `file` (at most `total` bytes; a
/// longer file is cut back to nothing) and leave the file positioned at its end.
fn hash_prefix(file: &mut fs::File, total: u64) -> io::Result<(sha2::Sha256, u64)> {
    let mut hasher = sha2::Sha256::new();
    let len = file.metadata()?.len();
    if len > total {
        file.set_len(0)?;
        file.seek(io::SeekFrom::Start(0))?;
        return Ok((hasher, 0));
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    file.seek(io::SeekFrom::Start(0))?;
    loop {
        let k = file.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hasher, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_download_hashes_the_bytes_it_had_then_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.partial");
        let whole: Vec<u8> = (0..3_000_000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        fs::write(&p, &whole[..1_234_567]).unwrap();
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        let (mut h, have) = hash_prefix(&mut f, whole.len() as u64).unwrap();
        assert_eq!(have, 1_234_567);
        f.write_all(&whole[1_234_567..]).unwrap();
        h.update(&whole[1_234_567..]);
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(format!("sha256:{hex}"), sha256_of(&whole));
        assert_eq!(fs::read(&p).unwrap(), whole, "appended where it stopped");
        // A partial file longer than the blob is not trusted: start over.
        let (_, have) = hash_prefix(&mut f, 10).unwrap();
        assert_eq!((have, fs::metadata(&p).unwrap().len()), (0, 0));
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}
