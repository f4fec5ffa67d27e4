//! `rwasm load -i FILE` and `rwasm save -o FILE IMAGE...`: image archives.
//!
//! `load` reads both forms Docker reads: a `docker save` archive (`manifest.json` listing
//! each image's config file, layer files and `RepoTags`) and an OCI archive (an image layout
//! as a tar: `oci-layout`, `index.json`, `blobs/sha256/...`; an index inside it is resolved
//! to this machine's platform). The archive may itself be gzip or zstd compressed. Every
//! blob is verified by digest on its way into the store.
//!
//! `save` writes what Docker 25+ writes: an OCI layout that is also a `docker save` archive
//! (`manifest.json` beside `index.json`, paths into `blobs/sha256`), so `docker load`,
//! `skopeo copy oci-archive:` and `rwasm load` all read it.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

use super::blobs::{check, sha256_hex};
use super::index::{IMAGE_NAME, REF_NAME};
use super::layer::decompress;
use super::reference::Reference;
use super::{Image, ImageError, ImageStore, MAX_JSON_BLOB, io};

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    /// Path of the config JSON in the archive.
    config: String,
    /// `REPO:TAG` names; may be absent.
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars in the archive, bottom first.
    layers: Vec<String>,
}

fn bad(path: &Path, reason: impl Into<String>) -> ImageError {
    ImageError::Archive {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Removes a scratch directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The media type of a layer blob by its magic bytes.
fn layer_media_type(path: &Path) -> Result<MediaType, ImageError> {
    let mut head = [0u8; 4];
    let mut f = fs::File::open(path).map_err(io("open", path))?;
    let n = f.read(&mut head).map_err(io("read", path))?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => MediaType::ImageLayerGzip,
        [0x28, 0xb5, 0x2f, 0xfd] => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    })
}

impl ImageStore {
    /// `rwasm load -i FILE`: every image of the archive, stored, unpacked and tagged. A
    /// failed load leaves no blob behind that nothing else uses.
    pub fn load(&self, archive: &Path) -> Result<Vec<Image>, ImageError> {
        let f = fs::File::open(archive).map_err(io("open", archive))?;
        self.load_from(f, archive)
    }

    /// [`ImageStore::load`] of the archive read from `r` (standard input, for `rwasm load`
    /// without `-i`); `archive` names it in errors.
    pub fn load_from(&self, r: impl Read, archive: &Path) -> Result<Vec<Image>, ImageError> {
        let r = self.load_locked(r, archive);
        if r.is_err() {
            self.collect_after_failure();
        }
        r
    }

    fn load_locked(&self, r: impl Read, archive: &Path) -> Result<Vec<Image>, ImageError> {
        self.init()?;
        let _l = self.gc_lock(false)?;
        let scratch = Scratch(
            self.tmp_dir()
                .join(format!("load-{}", super::blobs::tmp_suffix())),
        );
        fs::create_dir_all(&scratch.0).map_err(io("create", &scratch.0))?;
        let dec = decompress(BufReader::new(r)).map_err(io("read", archive))?;
        let mut ar = tar::Archive::new(dec);
        ar.set_preserve_permissions(false);
        ar.unpack(&scratch.0)
            .map_err(|e| bad(archive, format!("cannot unpack: {e}")))?;
        let root = scratch
            .0
            .canonicalize()
            .map_err(io("resolve", &scratch.0))?;
        // A file the archive names, which must stay inside it (a symlink may not leave).
        let inside = |rel: &str| -> Result<PathBuf, ImageError> {
            let p = root
                .join(rel)
                .canonicalize()
                .map_err(|_| bad(archive, format!("it lists {rel:?}, which it does not hold")))?;
            if p.starts_with(&root) && p.is_file() {
                Ok(p)
            } else {
                Err(bad(
                    archive,
                    format!("{rel:?} is not a file inside the archive"),
                ))
            }
        };
        if root.join("manifest.json").is_file() {
            let bytes = fs::read(root.join("manifest.json")).map_err(io("read", archive))?;
            let list: Vec<DockerManifest> =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                    what: format!("manifest.json of {}", archive.display()),
                    source,
                })?;
            let mut images = Vec::new();
            for m in list {
                let cfg_path = inside(&m.config)?;
                let cfg = fs::read(&cfg_path).map_err(io("read", &cfg_path))?;
                if cfg.len() as u64 > MAX_JSON_BLOB {
                    return Err(bad(archive, format!("config {:?} is too large", m.config)));
                }
                let cfg_digest = self.blobs().write_bytes(&cfg)?;
                let mut layers = Vec::new();
                for l in &m.layers {
                    let p = inside(l)?;
                    let mt = layer_media_type(&p)?;
                    let f = fs::File::open(&p).map_err(io("open", &p))?;
                    let (d, size) = self.blobs().write(f, None)?;
                    layers.push(Descriptor::new(
                        mt,
                        size,
                        d.parse::<oci_spec::image::Digest>()
                            .map_err(|_| ImageError::BadDigest(d.clone()))?,
                    ));
                }
                let mut tags = Vec::new();
                for t in m.repo_tags.unwrap_or_default() {
                    tags.extend(Reference::parse(&t)?.tagged());
                }
                images.push(self.commit(&cfg_digest, cfg.len() as u64, &layers, &tags)?);
            }
            Ok(images)
        } else if root.join("index.json").is_file() {
            let bytes = fs::read(root.join("index.json")).map_err(io("read", archive))?;
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                    what: format!("index.json of {}", archive.display()),
                    source,
                })?;
            let copy = |d: &Descriptor| -> Result<(), ImageError> {
                let digest = d.digest().to_string();
                let hex = sha256_hex(&digest)?;
                let p = inside(&format!("blobs/sha256/{hex}"))?;
                let f = fs::File::open(&p).map_err(io("open", &p))?;
                self.blobs().write(f, Some(&digest))?;
                Ok(())
            };
            let mut images = Vec::new();
            for top in index.manifests() {
                let mut d = top.clone();
                if *d.media_type() == MediaType::ImageIndex
                    || d.media_type().to_string()
                        == "application/vnd.docker.distribution.manifest.list.v2+json"
                {
                    copy(&d)?;
                    let nested: ImageIndex = serde_json::from_slice(
                        &self.blobs().read(d.digest().as_ref(), MAX_JSON_BLOB)?,
                    )
                    .map_err(|source| ImageError::Json {
                        what: format!("index {}", d.digest()),
                        source,
                    })?;
                    d = nested
                        .manifests()
                        .iter()
                        .find(|m| {
                            m.platform().as_ref().is_none_or(|p| {
                                p.os().to_string() == "linux"
                                    && p.architecture().to_string() == super::import::arch()
                            })
                        })
                        .cloned()
                        .ok_or_else(|| {
                            bad(
                                archive,
                                format!(
                                    "index {} has no linux/{} image",
                                    d.digest(),
                                    super::import::arch()
                                ),
                            )
                        })?;
                }
                copy(&d)?;
                let mdigest = d.digest().to_string();
                let mbytes = self.blobs().read(&mdigest, MAX_JSON_BLOB)?;
                let manifest: ImageManifest =
                    serde_json::from_slice(&mbytes).map_err(|source| ImageError::Json {
                        what: format!("manifest {mdigest}"),
                        source,
                    })?;
                copy(manifest.config())?;
                for l in manifest.layers() {
                    copy(l)?;
                }
                let ann = top.annotations().clone().unwrap_or_default();
                let name = ann.get(IMAGE_NAME).or_else(|| {
                    ann.get(REF_NAME)
                        .filter(|n| n.contains(':') || n.contains('/'))
                });
                let tags = match name {
                    Some(n) => Reference::parse(n)?.tagged().into_iter().collect(),
                    None => vec![],
                };
                images.push(self.commit_manifest(&mdigest, mbytes.len() as u64, &tags)?);
            }
            Ok(images)
        } else {
            Err(bad(
                archive,
                "neither a docker save archive (manifest.json) nor an OCI archive (index.json)",
            ))
        }
    }

    /// `rwasm save -o OUT NAME...`: the images as one archive, written to a temporary file
    /// beside `out` and renamed into place (a failed save leaves nothing).
    pub fn save(&self, names: &[String], out: &Path) -> Result<(), ImageError> {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            out.file_name().and_then(|n| n.to_str()).unwrap_or("save"),
            super::blobs::tmp_suffix()
        ));
        let result = (|| {
            let f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
            let f = self.save_to(names, f, &tmp)?;
            f.sync_all().map_err(io("write", &tmp))?;
            fs::rename(&tmp, out).map_err(io("write", out))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// The archive of [`ImageStore::save`] written to `w` (standard output, for `rwasm save`
    /// without `-o`), which is returned; `out` names it in errors. An OCI image layout
    /// with Docker's `manifest.json` beside it, so both `docker load` and OCI tools read it.
    pub fn save_to<W: Write>(&self, names: &[String], w: W, out: &Path) -> Result<W, ImageError> {
        let _l = self.gc_lock(false)?;
        let mut images = Vec::new();
        for n in names {
            let img = self.image(&self.find(n)?)?;
            // Saved by tag: that tag only; by ID: all of the image's tags.
            let tags = match Reference::parse(n).ok().and_then(|r| r.tagged()) {
                Some(t) if img.tags.contains(&t) => vec![t],
                _ => img.tags.clone(),
            };
            images.push((img, tags));
        }
        let mut b = tar::Builder::new(w);
        let mut written: Vec<String> = Vec::new();
        let add_bytes = |b: &mut tar::Builder<W>, path: &str, bytes: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, bytes).map_err(io("write", out))
        };
        let mut blob = |b: &mut tar::Builder<W>, digest: &str| -> Result<(), ImageError> {
            if written.iter().any(|d| d == digest) {
                return Ok(());
            }
            let hex = sha256_hex(digest)?.to_string();
            let path = self.blobs().path(digest)?;
            let size = fs::metadata(&path)
                .map_err(|_| ImageError::MissingBlob(digest.to_string()))?
                .len();
            let mut r = self.blobs().open(digest)?;
            let mut h = tar::Header::new_ustar();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("blobs/sha256/{hex}"), &mut r)
                .map_err(io("write", out))?;
            let (actual, _) = r.finish().map_err(io("read", &path))?;
            check(&format!("stored blob {}", path.display()), digest, &actual)?;
            written.push(digest.to_string());
            Ok(())
        };
        let mut index_entries = Vec::new();
        let mut docker = Vec::new();
        for (img, tags) in &images {
            blob(&mut b, &img.manifest_digest)?;
            blob(&mut b, &img.id)?;
            for l in img.manifest.layers() {
                blob(&mut b, l.digest().as_ref())?;
            }
            let refs: Vec<Option<&String>> = if tags.is_empty() {
                vec![None]
            } else {
                tags.iter().map(Some).collect()
            };
            for t in refs {
                let mut d =
                    super::index::descriptor(&img.manifest_digest, img.manifest_size, None)?;
                if let Some(t) = t {
                    let r = Reference::parse(t)?;
                    d.set_annotations(Some(HashMap::from([
                        (IMAGE_NAME.to_string(), r.full()),
                        (REF_NAME.to_string(), r.tag.clone().unwrap_or_default()),
                    ])));
                }
                index_entries.push(d);
            }
            let hex = |d: &str| format!("blobs/sha256/{}", &d["sha256:".len()..]);
            docker.push(DockerManifest {
                config: hex(&img.id),
                repo_tags: Some(tags.clone()),
                layers: img
                    .manifest
                    .layers()
                    .iter()
                    .map(|l| hex(l.digest().as_ref()))
                    .collect(),
            });
        }
        add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index_entries,
        });
        add_bytes(
            &mut b,
            "index.json",
            &serde_json::to_vec(&index).expect("index serializes"),
        )?;
        add_bytes(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&docker).expect("manifest.json serializes"),
        )?;
        b.into_inner().map_err(io("write", out))
    }
}
