//! `rwasm tag`, `rwasm rmi [-f]`, `rwasm image prune [-a]`, `rwasm images` and
//! `rwasm image inspect`, with Docker's rules: `rmi` of one of several tags only untags;
//! deleting an image that a container uses, that several repositories reference, or that
//! other images are built on (their layers start with all of its layers) is a conflict;
//! a running container's image cannot be deleted even with `-f`. Blobs and unpacked
//! layers that no image and no container needs any more are then collected.
//!
//! `rmi` and `image prune` decide and collect under the store's collection lock held
//! exclusively, and read the containers on disk once they hold it: a `run` holds the lock
//! shared from resolving its image until its config.json names it, so it either sees the
//! image gone or is seen as the image's user.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::index::{self, tag_of};
use super::reference::Reference;
use super::{IMAGE_MANIFEST_ANNOTATION, Image, ImageError, ImageStore, io};

/// A container that holds an image: its id, the image's manifest digest, whether it runs.
#[derive(Debug, Clone)]
pub struct ContainerUse {
    /// The container id.
    pub id: String,
    /// The manifest digest recorded in its config.json ([`IMAGE_MANIFEST_ANNOTATION`]).
    pub manifest: String,
    /// Whether it is running (its image then cannot be deleted, even with `-f`).
    pub running: bool,
}

/// The containers under `<data-root>/containers` and the images they were made from;
/// `is_running(id)` says which run.
pub fn container_uses(data_root: &Path, is_running: &dyn Fn(&str) -> bool) -> Vec<ContainerUse> {
    let Ok(rd) = fs::read_dir(data_root.join("containers")) else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            let spec: Value =
                serde_json::from_slice(&fs::read(e.path().join("config.json")).ok()?).ok()?;
            let manifest = spec["annotations"][IMAGE_MANIFEST_ANNOTATION]
                .as_str()?
                .to_string();
            Some(ContainerUse {
                running: is_running(&id),
                id,
                manifest,
            })
        })
        .collect()
}

/// One line of `rwasm rmi` / `image prune` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// `Untagged: REPO:TAG`.
    Untagged(String),
    /// `Deleted: sha256:...` (the image ID).
    Deleted(String),
}

/// Remove a file or a directory tree; returns the bytes of the files it held.
fn remove_tree(p: &Path) -> Result<u64, ImageError> {
    let meta = fs::symlink_metadata(p).map_err(io("inspect", p))?;
    if !meta.is_dir() {
        fs::remove_file(p).map_err(io("remove", p))?;
        return Ok(meta.len());
    }
    let mut bytes = 0;
    for e in fs::read_dir(p).map_err(io("list", p))?.flatten() {
        bytes += remove_tree(&e.path())?;
    }
    fs::remove_dir(p).map_err(io("remove", p))?;
    Ok(bytes)
}

/// What `rwasm image prune` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// `untagged:` and `deleted:` lines, in order.
    pub removed: Vec<Removed>,
    /// Bytes freed: blob files plus the file content of the unpacked layers removed
    /// (Docker's `Total reclaimed space`).
    pub reclaimed: u64,
}

/// A row of `rwasm images`.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Repository, `<none>` for a dangling image.
    pub repository: String,
    /// Tag, `<none>` for a dangling image.
    pub tag: String,
    /// `sha256:HEX` of the config.
    pub id: String,
    /// The config's `created`, RFC 3339, if it has one.
    pub created: Option<String>,
    /// Bytes of file content in its unpacked layers (Docker's SIZE).
    pub size: u64,
    /// `sha256:..` the repository's image was pulled by (Docker's DIGEST), if it was pulled.
    pub digest: Option<String>,
}

/// The first 12 hex digits of an ID, as Docker shows it.
pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

impl ImageStore {
    /// `rwasm tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let entry = self.find(source)?;
        let (_, size) = self.manifest(&entry.manifest)?;
        let r = Reference::parse(target)?;
        let t = r.tagged().ok_or_else(|| ImageError::BadReference {
            reference: target.to_string(),
            reason: "refusing to create a tag with a digest reference".into(),
        })?;
        self.index
            .update(|m| index::set_tag(m, &entry.manifest, size, &t))
    }

    /// `rwasm rmi [-f] NAME`: untag, or delete the image, as Docker decides (see the module).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        users: &[ContainerUse],
    ) -> Result<Vec<Removed>, ImageError> {
        // Decided and done under the collection lock: a `run` that resolved the image
        // before has written its config.json by now, and is among the users.
        let _l = self.gc_lock(true)?;
        let users = &self.with_current_users(users);
        let entry = self.find(name)?;
        let img = self.image(&entry)?;
        let short = short_id(&img.id);
        let by_tag = Reference::parse(name)
            .ok()
            .and_then(|r| r.tagged())
            .filter(|t| entry.tags.contains(t));
        if let Some(t) = &by_tag
            && entry.tags.len() > 1
        {
            self.index.update(|m| {
                m.retain(|d| tag_of(d) != Some(t.as_str()));
                Ok(())
            })?;
            return Ok(vec![Removed::Untagged(t.clone())]);
        }
        if by_tag.is_none() && entry.tags.len() > 1 && !force {
            return Err(ImageError::Conflict {
                action: "delete",
                target: short,
                force: "must be forced",
                reason: "image is referenced in multiple repositories".into(),
            });
        }
        if let Some(u) = users.iter().find(|u| u.manifest == entry.manifest) {
            if u.running {
                return Err(ImageError::Conflict {
                    action: "delete",
                    target: short,
                    force: "cannot be forced",
                    reason: format!(
                        "image is being used by running container {}",
                        short_id(&u.id)
                    ),
                });
            }
            if !force {
                return Err(ImageError::Conflict {
                    action: if by_tag.is_some() {
                        "remove repository reference"
                    } else {
                        "delete"
                    },
                    target: if by_tag.is_some() {
                        format!("{name:?}")
                    } else {
                        short.clone()
                    },
                    force: "must force",
                    reason: format!(
                        "container {} is using its referenced image {short}",
                        short_id(&u.id)
                    ),
                });
            }
        }
        if !force {
            for other in self.index.entries()? {
                if other.manifest == entry.manifest {
                    continue;
                }
                let o = self.image(&other)?;
                let (mine, theirs) = (img.diff_ids(), o.diff_ids());
                if theirs.len() > mine.len() && theirs.starts_with(mine) {
                    return Err(ImageError::Conflict {
                        action: "delete",
                        target: short,
                        force: "must force",
                        reason: format!(
                            "image has dependent child images ({})",
                            o.tags.first().cloned().unwrap_or_else(|| short_id(&o.id))
                        ),
                    });
                }
            }
        }
        let mut out: Vec<Removed> = entry.tags.iter().cloned().map(Removed::Untagged).collect();
        self.index.update(|m| {
            m.retain(|d| d.digest().to_string() != entry.manifest);
            Ok(())
        })?;
        out.push(Removed::Deleted(img.id.clone()));
        self.collect_locked(users)?;
        Ok(out)
    }

    /// `users` plus every container on disk now (not running as far as `users` knows).
    fn with_current_users(&self, users: &[ContainerUse]) -> Vec<ContainerUse> {
        let mut all = users.to_vec();
        for u in container_uses(&self.data_root, &|_| false) {
            if !all.iter().any(|a| a.id == u.id) {
                all.push(u);
            }
        }
        all
    }

    /// `rwasm image prune [-a]`: delete dangling images (with `all`, every image) that no
    /// container uses; returns the untagged names and deleted IDs, and the bytes freed.
    pub fn prune(&self, all: bool, users: &[ContainerUse]) -> Result<Pruned, ImageError> {
        let _l = self.gc_lock(true)?;
        let users = &self.with_current_users(users);
        let mut out = Vec::new();
        let used: HashSet<&str> = users.iter().map(|u| u.manifest.as_str()).collect();
        // Dangling, as Docker means it: neither a tag nor a digest it was pulled by.
        let pulled = self.index.repo_digests()?;
        let victims: Vec<_> = self
            .index
            .entries()?
            .into_iter()
            .filter(|e| {
                (all || (e.tags.is_empty() && !pulled.contains_key(&e.manifest)))
                    && !used.contains(e.manifest.as_str())
            })
            .collect();
        for e in &victims {
            let id = self
                .manifest(&e.manifest)
                .map(|(m, _)| m.config().digest().to_string());
            out.extend(e.tags.iter().cloned().map(Removed::Untagged));
            if let Ok(id) = id {
                out.push(Removed::Deleted(id));
            }
        }
        let gone: HashSet<&str> = victims.iter().map(|e| e.manifest.as_str()).collect();
        self.index.update(|m| {
            m.retain(|d| !gone.contains(d.digest().to_string().as_str()));
            Ok(())
        })?;
        let mut reclaimed = self.collect_locked(users)?;
        // Downloads that interrupted pulls left (no pull runs now: each holds the lock).
        for e in fs::read_dir(self.tmp_dir()).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("pull-") && n.ends_with(".partial") {
                reclaimed += remove_tree(&e.path())?;
            }
        }
        Ok(Pruned {
            removed: out,
            reclaimed,
        })
    }

    /// Remove every blob and unpacked layer that neither an indexed image nor a container
    /// (`users`, and those on disk now) needs; returns the bytes freed (blob files plus
    /// the file content of unpacked layers). Holds the store's collection lock exclusively.
    pub fn collect(&self, users: &[ContainerUse]) -> Result<u64, ImageError> {
        let _l = self.gc_lock(true)?;
        let users = self.with_current_users(users);
        self.collect_locked(&users)
    }

    /// [`Self::collect`] with the collection lock already held exclusively.
    fn collect_locked(&self, users: &[ContainerUse]) -> Result<u64, ImageError> {
        let mut reclaimed = 0u64;
        let mut manifests: Vec<String> = self
            .index
            .entries()?
            .into_iter()
            .map(|e| e.manifest)
            .collect();
        let indexed: HashSet<String> = manifests.iter().cloned().collect();
        if self
            .index
            .repo_digests()?
            .keys()
            .any(|m| !indexed.contains(m))
        {
            self.index
                .update_repo_digests(|m| m.retain(|k, _| indexed.contains(k)))?;
        }
        manifests.extend(users.iter().map(|u| u.manifest.clone()));
        let mut blobs: HashSet<String> = HashSet::new();
        let mut layers: HashSet<String> = HashSet::new();
        for m in manifests {
            let Ok((man, _)) = self.manifest(&m) else {
                continue;
            };
            blobs.insert(m.clone());
            blobs.insert(man.config().digest().to_string());
            blobs.extend(man.layers().iter().map(|l| l.digest().to_string()));
            if let Ok(img) = self.image(&index::Entry {
                manifest: m,
                tags: vec![],
            }) {
                layers.extend(
                    img.diff_ids()
                        .iter()
                        .map(|d| d.trim_start_matches("sha256:").to_string()),
                );
            }
        }
        for b in self.blobs.list()? {
            if !blobs.contains(&b) {
                reclaimed += self
                    .blobs
                    .path(&b)
                    .ok()
                    .and_then(|p| fs::metadata(p).ok())
                    .map_or(0, |m| m.len());
                self.blobs.remove(&b)?;
            }
        }
        // Under the exclusive lock no writer runs (every writer of blobs and layers holds
        // it shared): a temporary file or directory there is left by a killed process.
        for d in [self.blobs.dir().to_path_buf(), self.layers_dir()] {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    reclaimed += remove_tree(&e.path())?;
                }
            }
        }
        let dir = self.layers_dir();
        if let Ok(rd) = fs::read_dir(&dir) {
            // Directories first: a layer's size is read from its `.size` file.
            let mut entries: Vec<_> = rd.flatten().collect();
            entries.sort_by_key(|e| !e.path().is_dir());
            for e in entries {
                let n = e.file_name().to_string_lossy().into_owned();
                let hex = n.strip_suffix(".size").unwrap_or(&n);
                if n.starts_with('.') || layers.contains(hex) {
                    continue;
                }
                let p = e.path();
                if p.is_dir() {
                    reclaimed += self.layer_size(&format!("sha256:{n}"));
                }
                let r = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(io("remove", &p))?;
            }
        }
        Ok(reclaimed)
    }

    /// After a failed load or import (its shared lock released): collect what it stored.
    pub(crate) fn collect_after_failure(&self) {
        if let Err(e) = self.collect(&[]) {
            tracing::warn!("{}", crate::error_chain(&e));
        }
    }

    /// The rows of `rwasm images`: one per tag, one `<none>` row per dangling image,
    /// newest first.
    pub fn list(&self) -> Result<Vec<Summary>, ImageError> {
        let mut rows = Vec::new();
        let pulled = self.index.repo_digests()?;
        for e in self.index.entries()? {
            let img = self.image(&e)?;
            let size = img.diff_ids().iter().map(|d| self.layer_size(d)).sum();
            let created = img.config.created().clone();
            let digests = pulled.get(&e.manifest).cloned().unwrap_or_default();
            let digest_of = |repo: &str| {
                digests
                    .iter()
                    .find_map(|d| d.strip_prefix(repo)?.strip_prefix('@'))
                    .map(str::to_string)
            };
            let names: Vec<(String, String)> = if e.tags.is_empty() && !digests.is_empty() {
                // Pulled by digest only: the repository with tag <none>, as Docker lists it.
                digests
                    .iter()
                    .map(|d| {
                        let repo = d.split('@').next().unwrap_or(d);
                        (repo.to_string(), "<none>".to_string())
                    })
                    .collect()
            } else if e.tags.is_empty() {
                vec![("<none>".into(), "<none>".into())]
            } else {
                e.tags
                    .iter()
                    .map(|t| {
                        let r = Reference::parse(t).ok();
                        r.map_or((t.clone(), "<none>".into()), |r| {
                            (r.repository, r.tag.unwrap_or_default())
                        })
                    })
                    .collect()
            };
            for (repository, tag) in names {
                rows.push(Summary {
                    digest: digest_of(&repository),
                    repository,
                    tag,
                    id: img.id.clone(),
                    created: created.clone(),
                    size,
                });
            }
        }
        rows.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then(a.repository.cmp(&b.repository))
        });
        Ok(rows)
    }

    /// `rwasm image inspect NAME`: Docker's image inspect object (Id, RepoTags, Created,
    /// Config, Architecture, Os, Size, RootFS, ...), plus the manifest digest.
    pub fn inspect(&self, name: &str) -> Result<Value, ImageError> {
        let img: Image = self.image(&self.find(name)?)?;
        let repo_digests = self
            .index
            .repo_digests()?
            .remove(&img.manifest_digest)
            .unwrap_or_default();
        let size: u64 = img.diff_ids().iter().map(|d| self.layer_size(d)).sum();
        let c = &img.config;
        let config = serde_json::to_value(c.config()).unwrap_or(Value::Null);
        Ok(json!({
            "Id": img.id,
            "RepoTags": img.tags,
            "RepoDigests": repo_digests,
            "Parent": "",
            "Comment": c.history().as_ref().and_then(|h| h.last()).and_then(|h| h.comment().clone()).unwrap_or_default(),
            "Created": c.created().clone().unwrap_or_default(),
            "Author": c.author().clone().unwrap_or_default(),
            "Config": config,
            "Architecture": c.architecture().to_string(),
            "Os": c.os().to_string(),
            "Size": size,
            "RootFS": {"Type": "layers", "Layers": img.diff_ids()},
            "Metadata": {"LastTagTime": ""},
            "Descriptor": {
                "mediaType": img.manifest.media_type().as_ref().map_or_else(
                    || "application/vnd.oci.image.manifest.v1+json".to_string(),
                    ToString::to_string,
                ),
                "digest": img.manifest_digest,
                "size": img.manifest_size,
            },
        }))
    }
}
