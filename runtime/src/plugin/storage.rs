//! Storage driver plugins (world `storage-driver` of `rwasm:plugin@0.3.0`): the values a
//! driver is called with and answers, and the [`PluginSet`] call that runs its `prepare`,
//! `release` or `usage` (containers/storage's graph driver `Get`/`Put`/`Status`).
//!
//! The driver mounts through `storage-host` only; the host checks every request (see
//! `host::storage_ctx`), checks that the rootfs it answers lies under its state directory,
//! and after a failed `prepare` unmounts whatever that call mounted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::manifest::PluginKind;
use super::{FailureCause, Phase, PluginError, PluginSet, host};

/// A storage operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    /// Build and mount a container's rootfs.
    Prepare,
    /// Unmount and remove it.
    Release,
    /// Report its writable layer's usage.
    Usage,
}

impl StorageOp {
    /// `prepare`, `release`, `usage`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageOp::Prepare => "prepare",
            StorageOp::Release => "release",
            StorageOp::Usage => "usage",
        }
    }
}

/// One unpacked image layer handed to a driver.
#[derive(Debug, Clone)]
pub struct StorageLayer {
    /// `sha256:...` diff ID (or the directory's name when unknown).
    pub digest: String,
    /// The layer's directory (absolute).
    pub path: PathBuf,
}

/// What a driver is asked (`storage.prepare-request`; `release` and `usage` use the id).
#[derive(Debug, Clone, Default)]
pub struct StorageRequest {
    /// The container id.
    pub container_id: String,
    /// The layers, bottom first (empty for `release` and `usage`).
    pub layers: Vec<StorageLayer>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--storage-opt key=value`.
    pub options: Vec<(String, String)>,
}

/// A driver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageAnswer {
    /// `prepare`: the mounted rootfs (checked to lie under the driver's directory).
    Prepared(PathBuf),
    /// `release` succeeded.
    Released,
    /// `usage`: bytes and inodes of the writable layer.
    Usage {
        /// Bytes.
        size: u64,
        /// Inodes.
        inodes: u64,
    },
}

/// What one driver call did.
#[derive(Debug)]
pub struct StorageOutcome {
    /// The driver's answer.
    pub answer: StorageAnswer,
    /// Targets the call mounted, in order (the host unmounts them, last first, at stop).
    pub mounted: Vec<PathBuf>,
}

impl PluginSet {
    /// Whether the manifest has a `storage-driver` plugin named `name`.
    pub fn has_storage_driver(&self, name: &str) -> bool {
        self.plugins
            .iter()
            .any(|p| p.spec.kind == PluginKind::StorageDriver && p.spec.name == name)
    }

    /// The state directory of the storage driver `name` (`[plugin.grants.storage]
    /// state-dir`), if the manifest has it.
    pub fn storage_state_dir(&self, name: &str) -> Option<PathBuf> {
        self.plugins
            .iter()
            .find(|p| p.spec.kind == PluginKind::StorageDriver && p.spec.name == name)
            .and_then(|p| p.spec.storage_dir.clone())
    }

    /// Runs `op` of the storage driver named `name` for `req`. The state directory is
    /// created if missing. After a failed `prepare` the host unmounts what the call
    /// mounted; a `prepare` answer outside the state directory is a failure too.
    ///
    /// Errors: [`PluginError::NoStorageDriver`] when there is no such driver, else
    /// [`PluginError::StorageFailed`] naming the driver, the operation and the phase.
    pub fn storage(
        &self,
        name: &str,
        op: StorageOp,
        req: &StorageRequest,
    ) -> Result<StorageOutcome, PluginError> {
        let (plugin, state_dir) = self
            .plugins
            .iter()
            .find(|p| p.spec.kind == PluginKind::StorageDriver && p.spec.name == name)
            .and_then(|p| Some((p, p.spec.storage_dir.clone()?)))
            .ok_or_else(|| PluginError::NoStorageDriver {
                name: name.to_string(),
                manifest: self.manifest.clone(),
            })?;
        let failed = |phase, cause| PluginError::StorageFailed {
            plugin: plugin.spec.name.clone(),
            op: op.as_str(),
            phase,
            cause,
        };
        let _span =
            tracing::info_span!("storage", plugin = %plugin.spec.name, op = op.as_str()).entered();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| failed(Phase::Prepare, FailureCause::Io { path, source })
        };
        std::fs::create_dir_all(&state_dir).map_err(io(&state_dir))?;
        self.join_prefetch();
        let host = self
            .host_or_new()
            .map_err(|cause| failed(Phase::Load, cause))?;
        let started = Instant::now();
        let (loaded, _) = host
            .load_storage(&plugin.spec, &self.cache_dir)
            .map_err(|cause| failed(Phase::Load, cause))?;
        let layers: Vec<PathBuf> = req.layers.iter().map(|l| l.path.clone()).collect();
        let ctx = host::StorageCtx::new(&state_dir, &layers).map_err(io(&state_dir))?;
        let canonical = state_dir.canonicalize().map_err(io(&state_dir))?;
        let (result, mounted) = host.storage_call(&loaded, &plugin.spec, op, req, &state_dir, ctx);
        tracing::debug!(
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "storage driver call finished"
        );
        let result = result.and_then(|answer| match &answer {
            StorageAnswer::Prepared(p) => match p.canonicalize() {
                Ok(c) if c.starts_with(&canonical) && c != canonical => {
                    Ok(StorageAnswer::Prepared(c))
                }
                _ => Err((
                    Phase::Invoke,
                    FailureCause::Guest {
                        message: format!(
                            "invalid-input: rootfs `{}` is not a directory under the driver's \
                             directory {}",
                            p.display(),
                            state_dir.display()
                        ),
                    },
                )),
            },
            _ => Ok(answer),
        });
        match result {
            Ok(answer) => Ok(StorageOutcome { answer, mounted }),
            Err((phase, cause)) => {
                if op == StorageOp::Prepare {
                    host::unmount_all(&mounted);
                }
                Err(failed(phase, cause))
            }
        }
    }
}
