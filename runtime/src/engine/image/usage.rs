//! What images take on disk, for `rwasm system df` (Docker's `docker system df`): shared
//! layers are counted once, and what no container uses is reclaimable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::manage::ContainerUse;
use super::{ImageError, ImageStore};

/// The Images row of `system df`. Sizes in bytes of file content in unpacked layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagesUsage {
    /// Images in the store (distinct manifests).
    pub total: u64,
    /// Images at least one container was made from.
    pub active: u64,
    /// Bytes of every layer in the store, each layer once.
    pub size: u64,
    /// Bytes of the layers that no active image has.
    pub reclaimable: u64,
    /// Per image (by `sha256:` config ID): its layers' bytes and how many containers use it,
    /// for `system df -v`.
    pub per_image: BTreeMap<String, (u64, u64)>,
}

/// Bytes of file content in a container's image layers (`ContainerRecord::layers`), for
/// `ps -s`'s virtual size: a stored layer's recorded size (`layers/HEX.size`, written when
/// it was unpacked), or for a rootfs directory given by path the bytes of its files.
pub fn layer_dirs_bytes(layers: &[PathBuf]) -> u64 {
    layers
        .iter()
        .map(|l| {
            let stored = l
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            stored
                .then(|| std::fs::read_to_string(l.with_extension("size")).ok())
                .flatten()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or_else(|| crate::engine::disk_usage::tree_bytes(Path::new(l)))
        })
        .sum()
}

impl ImageStore {
    /// Disk usage of the images, given the containers that use them (`users`).
    ///
    /// # Errors
    /// The index or an image's manifest or config cannot be read.
    pub fn usage(&self, users: &[ContainerUse]) -> Result<ImagesUsage, ImageError> {
        let mut u = ImagesUsage::default();
        let mut all_layers = BTreeSet::new();
        let mut active_layers = BTreeSet::new();
        for e in self.index.entries()? {
            let img = self.image(&e)?;
            let n = users.iter().filter(|c| c.manifest == e.manifest).count() as u64;
            u.total += 1;
            if n > 0 {
                u.active += 1;
            }
            let mut bytes = 0;
            for d in img.diff_ids() {
                bytes += self.layer_size(d);
                all_layers.insert(d.clone());
                if n > 0 {
                    active_layers.insert(d.clone());
                }
            }
            let slot = u.per_image.entry(img.id.clone()).or_insert((bytes, 0));
            slot.1 += n;
        }
        u.size = all_layers.iter().map(|d| self.layer_size(d)).sum();
        u.reclaimable = all_layers
            .difference(&active_layers)
            .map(|d| self.layer_size(d))
            .sum();
        Ok(u)
    }
}
