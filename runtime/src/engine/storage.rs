//! How a Docker-style container's root filesystem is made from image layers: through a
//! `storage-driver` plugin (`rwasm --storage-driver overlay|vfs|NAME`, Docker's flag name,
//! given before or after `run`/`create`; `RWASM_STORAGE_DRIVER` sets the default).
//!
//! - `overlay` (the default, [`DEFAULT_DRIVER`]) and `vfs`: the first-party components
//!   `storage_overlay.wasm` and `storage_vfs.wasm` (found as the bridge network's
//!   component is: `$RWASM_PLUGIN_DIR`, beside the binary, [`BUILTIN_WASM_DIR`]), each run
//!   from a manifest rwasm writes to `<data-root>/storage/NAME.toml` with the state
//!   directory `<data-root>/storage/NAME`. A manifest plugin of the same name wins.
//! - NAME: the `storage-driver` plugin NAME of the manifest (`--plugins`).
//! - `native-overlay`: the native fast path ([`NativeOverlay`], no plugin), overlayfs with
//!   the bundle's `upper`/`work`.
//!
//! The choice is kept in the bundle's `storage.json` from `prepare` on, with the driver's
//! manifest and the mounts of its last `prepare` once mounted; every later `prepare` (a
//! restart), `release` and `usage` use that manifest's driver, with or without
//! `--plugins`. The driver's rootfs is
//! bind-mounted at the bundle's `rootfs` (config.json's `root.path`). At every stop rwasm
//! unmounts that bind and the driver's mounts ([`unmount`]); at removal the driver's
//! `release` runs ([`release`]), so `rm` and `prune` use the driver that made the rootfs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount as mount2};
use serde::{Deserialize, Serialize};

use crate::linux::overlay::{OverlayError, mount_overlay, unmount as unmount_one};
use crate::plugin::storage::{StorageAnswer, StorageLayer, StorageOp, StorageRequest};
use crate::plugin::{PluginError, PluginSet};

/// The driver a container gets without `--storage-driver`.
pub const DEFAULT_DRIVER: &str = "overlay";
/// The native overlay fast path's name.
pub const NATIVE_DRIVER: &str = "native-overlay";
/// Where an installed rwasm keeps its first-party components.
pub const BUILTIN_WASM_DIR: &str = "/usr/local/lib/rwasm/plugins";
/// The file in the bundle recording the container's storage driver.
const STATE_FILE: &str = "storage.json";

/// A storage failure; names the driver, file or mount.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A first-party driver's component is not installed.
    #[error("storage driver `{name}`: component {file} not found (searched {})", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoBuiltin {
        /// `overlay` or `vfs`.
        name: String,
        /// The file name looked for.
        file: String,
        /// Paths searched.
        searched: Vec<PathBuf>,
    },
    /// `--storage-driver` names no driver.
    #[error("invalid --storage-driver `{name}`: {reason}")]
    BadName {
        /// The value given.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A file operation failed.
    #[error("cannot {what} {path}")]
    Io {
        /// `read`, `write`, `create`, `mount`.
        what: &'static str,
        /// The file or mount point.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The bundle's storage.json is not valid.
    #[error("corrupt storage state {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A `--storage-opt` is malformed or its driver takes no such option.
    #[error("invalid --storage-opt {option:?}: {reason}")]
    BadOption {
        /// The option as given.
        option: String,
        /// Why it is refused.
        reason: String,
    },
    /// The driver failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The native overlay failed.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { what, path, source }
}

/// A bundle's `storage.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The driver's name.
    driver: String,
    /// `--read-only`.
    #[serde(default)]
    read_only: bool,
    /// The manifest the driver is loaded from: the caller's when it held the driver at
    /// [`choose`], else the first-party one's (once mounted).
    #[serde(default)]
    manifest: Option<PathBuf>,
    /// The driver's rootfs (once mounted).
    #[serde(default)]
    rootfs: Option<PathBuf>,
    /// What the driver's last `prepare` mounted, in order.
    #[serde(default)]
    mounted: Vec<PathBuf>,
    /// `--storage-opt KEY=VALUE`, handed to every `prepare`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    options: Vec<(String, String)>,
}

fn read_state(bundle: &Path) -> Result<Option<State>, StorageError> {
    let path = bundle.join(STATE_FILE);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StorageError::Corrupt { path, source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

fn write_state(bundle: &Path, state: &State) -> Result<(), StorageError> {
    let path = bundle.join(STATE_FILE);
    let bytes = serde_json::to_vec_pretty(state).expect("storage state serializes");
    super::state::write_atomic(&path, &bytes)
        .map_err(|e| io_err("write", &path)(io::Error::other(crate::error_chain(&e))))
}

/// Checks a `--storage-driver` value (a plugin name: `[A-Za-z0-9_.-]+`).
pub fn check_name(name: &str) -> Result<(), StorageError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(StorageError::BadName {
            name: name.to_string(),
            reason: "use overlay, vfs, native-overlay or a storage-driver plugin's name",
        });
    }
    Ok(())
}

/// Checks `--storage-opt` values (`KEY=VALUE`) for driver `driver` and returns them as
/// pairs. The first-party drivers (`overlay`, `vfs`, `native-overlay`) take no options:
/// none of them can enforce a size quota (Docker's `size=`, overlay2 over xfs with
/// `pquota` only), so any option is refused here, before anything is made, rather than
/// ignored. Options for a manifest's storage driver plugin (`plugins` has it) go to its
/// `prepare`, which refuses what it does not take.
///
/// Errors: [`StorageError::BadOption`] naming the option.
pub fn check_options(
    driver: &str,
    plugins: &PluginSet,
    options: &[String],
) -> Result<Vec<(String, String)>, StorageError> {
    let mut out = Vec::new();
    for o in options {
        let bad = |reason: String| StorageError::BadOption {
            option: o.clone(),
            reason,
        };
        let (k, v) = match o.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k.to_string(), v.to_string()),
            _ => return Err(bad("expected KEY=VALUE (e.g. size=10G)".to_string())),
        };
        let first_party = driver == NATIVE_DRIVER
            || (matches!(driver, "overlay" | "vfs") && !plugins.has_storage_driver(driver));
        if first_party {
            return Err(bad(format!(
                "storage driver `{driver}` takes no option `{k}` (none of rwasm's drivers \
                 supports options; a size quota needs a driver that can enforce one)"
            )));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Records in `bundle` that its rootfs comes from driver `driver` (`--read-only` as
/// given) with `options` (checked by [`check_options`]), and `plugins`' manifest when it
/// holds the driver, so that a later `start` without `--plugins` still finds it; nothing
/// is mounted yet.
pub fn choose(
    bundle: &Path,
    driver: &str,
    plugins: &PluginSet,
    read_only: bool,
    options: &[(String, String)],
) -> Result<(), StorageError> {
    check_name(driver)?;
    let manifest = plugins
        .manifest_path()
        .filter(|_| plugins.has_storage_driver(driver))
        .map(Path::to_path_buf);
    write_state(
        bundle,
        &State {
            driver: driver.to_string(),
            read_only,
            manifest,
            options: options.to_vec(),
            ..State::default()
        },
    )
}

/// The driver recorded in `bundle` (`native-overlay` for a bundle from before drivers).
pub fn driver_of(bundle: &Path) -> String {
    read_state(bundle)
        .ok()
        .flatten()
        .map_or_else(|| NATIVE_DRIVER.to_string(), |s| s.driver)
}

/// The manifest of first-party driver `name` (`overlay` or `vfs`), written to
/// `<data-root>/storage/NAME.toml`; `None` for another name.
pub fn builtin_manifest(data_root: &Path, name: &str) -> Result<Option<PathBuf>, StorageError> {
    let file = match name {
        "overlay" => "storage_overlay.wasm",
        "vfs" => "storage_vfs.wasm",
        _ => return Ok(None),
    };
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("RWASM_PLUGIN_DIR") {
        searched.push(PathBuf::from(dir).join(file));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        searched.push(dir.join(file));
    }
    searched.push(Path::new(BUILTIN_WASM_DIR).join(file));
    let Some(wasm) = searched.iter().find(|p| p.is_file()).cloned() else {
        return Err(StorageError::NoBuiltin {
            name: name.to_string(),
            file: file.to_string(),
            searched,
        });
    };
    let dir = data_root.join("storage");
    let state = dir.join(name);
    fs::create_dir_all(&state).map_err(io_err("create", &state))?;
    let text = format!(
        r#"# Written by rwasm: the first-party `{name}` storage driver.
[[plugin]]
name = "{name}"
path = {wasm:?}
kind = "storage-driver"
timeout-ms = 60000
[plugin.grants.storage]
state-dir = {state:?}
"#,
        wasm = wasm.display().to_string(),
        state = state.display().to_string(),
    );
    let manifest = dir.join(format!("{name}.toml"));
    // Rewritten only when it changes: concurrent runs read it.
    if fs::read_to_string(&manifest).ok().as_deref() != Some(text.as_str()) {
        super::state::write_atomic(&manifest, text.as_bytes())
            .map_err(|e| io_err("write", &manifest)(io::Error::other(crate::error_chain(&e))))?;
    }
    Ok(Some(manifest))
}

/// What [`mount`] needs.
pub struct MountCtx<'a> {
    /// The data root (first-party driver manifests and state live under `storage/`).
    pub data_root: &'a Path,
    /// The container's bundle `<data-root>/containers/<id>`.
    pub bundle: &'a Path,
    /// The image's unpacked layers, bottom first.
    pub layers: &'a [PathBuf],
    /// The loaded plugins (a manifest driver is looked up there).
    pub plugins: &'a PluginSet,
    /// The compiled-plugin cache.
    pub cache_dir: &'a Path,
}

/// Mounts the container's rootfs at `bundle/rootfs` through the driver its bundle
/// records: the driver's `prepare`, then a bind of its rootfs. On failure nothing stays
/// mounted. Errors: [`StorageError`] naming the driver or mount.
pub fn mount(ctx: &MountCtx<'_>) -> Result<(), StorageError> {
    let bundle = ctx.bundle;
    let rootfs = bundle.join("rootfs");
    let mut state = read_state(bundle)?.unwrap_or_else(|| State {
        driver: NATIVE_DRIVER.to_string(),
        ..State::default()
    });
    if state.driver == NATIVE_DRIVER {
        for d in ["upper", "work"] {
            fs::create_dir_all(bundle.join(d)).map_err(io_err("create", &bundle.join(d)))?;
        }
        return Ok(NativeOverlay.prepare(ctx.layers, bundle, &rootfs)?);
    }
    let id = bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _span =
        tracing::info_span!("storage prepare", container = %id, driver = %state.driver).entered();
    let owned;
    let here = ctx
        .plugins
        .manifest_path()
        .filter(|_| ctx.plugins.has_storage_driver(&state.driver));
    let (set, manifest) = match (state.manifest.clone(), here) {
        // A container prepared before (a restart) is served by the driver that made its
        // writable layer, from the manifest recorded then, whatever this process was given.
        (Some(r), Some(m)) if r == m => (ctx.plugins, r),
        (Some(r), _) => {
            owned = PluginSet::load(&r, ctx.cache_dir)?;
            (&owned, r)
        }
        (None, Some(m)) => (ctx.plugins, m.to_path_buf()),
        (None, None) => match builtin_manifest(ctx.data_root, &state.driver)? {
            Some(m) => {
                owned = PluginSet::load(&m, ctx.cache_dir)?;
                (&owned, m)
            }
            None => {
                return Err(PluginError::NoStorageDriver {
                    name: state.driver.clone(),
                    manifest: ctx.plugins.manifest_path().map(Path::to_path_buf),
                }
                .into());
            }
        },
    };
    let request = StorageRequest {
        container_id: id,
        layers: ctx
            .layers
            .iter()
            .map(|p| StorageLayer {
                digest: layer_digest(p),
                path: p.clone(),
            })
            .collect(),
        read_only: state.read_only,
        options: state.options.clone(),
    };
    let outcome = set.storage(&state.driver, StorageOp::Prepare, &request)?;
    state.manifest = Some(manifest);
    state.mounted = outcome.mounted;
    let StorageAnswer::Prepared(driver_rootfs) = outcome.answer else {
        unreachable!("prepare answers Prepared");
    };
    state.rootfs = Some(driver_rootfs.clone());
    let done = write_state(bundle, &state).and_then(|()| {
        fs::create_dir_all(&rootfs).map_err(io_err("create", &rootfs))?;
        mount2(
            Some(&driver_rootfs),
            &rootfs,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io_err("mount", &rootfs)(io::Error::from(e)))
    });
    if done.is_err() {
        unmount_driver(&state);
    }
    done
}

/// `sha256:HEX` from a layer directory named by its digest's hex, else the name.
fn layer_digest(p: &Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("sha256:{name}")
    } else {
        name
    }
}

fn unmount_driver(state: &State) {
    for m in state.mounted.iter().rev() {
        if let Err(e) = unmount_one(m) {
            tracing::warn!("{}", crate::error_chain(&e));
        }
    }
}

/// Unmounts the container's rootfs: the bind at `bundle/rootfs` and the mounts of the
/// driver's last `prepare` (the driver's data stays for the next start). Idempotent.
pub fn unmount(bundle: &Path) -> Result<(), StorageError> {
    unmount_one(&bundle.join("rootfs"))?;
    if let Some(state) = read_state(bundle)? {
        unmount_driver(&state);
    }
    Ok(())
}

/// Releases the container's rootfs before its bundle goes: [`unmount`], then the
/// driver's `release` (loaded from the manifest recorded at mount), then storage.json.
/// A driver that cannot be loaded or fails is logged; its mounts are gone either way.
pub fn release(bundle: &Path, cache_dir: &Path) {
    if let Err(e) = unmount(bundle) {
        tracing::warn!("{}", crate::error_chain(&e));
    }
    let state = match read_state(bundle) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("{}", crate::error_chain(&e));
            return;
        }
    };
    if let Some(manifest) = &state.manifest {
        let id = bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let request = StorageRequest {
            container_id: id.clone(),
            ..StorageRequest::default()
        };
        let released = PluginSet::load(manifest, cache_dir)
            .and_then(|set| set.storage(&state.driver, StorageOp::Release, &request));
        if let Err(e) = released {
            tracing::warn!(container = %id, "{}", crate::error_chain(&e));
        }
    }
    let path = bundle.join(STATE_FILE);
    if let Err(e) = fs::remove_file(&path) {
        tracing::warn!("{}", crate::error_chain(&io_err("remove", &path)(e)));
    }
}

/// The writable layer's usage (bytes, inodes) of the container in `bundle`, from its
/// driver's `usage`; `None` when it has no plugin driver or is not mounted yet.
pub fn usage(bundle: &Path, cache_dir: &Path) -> Option<(u64, u64)> {
    let state = read_state(bundle).ok()??;
    // Prepared once (a created container's driver has made nothing yet).
    state.rootfs.as_ref()?;
    let manifest = state.manifest?;
    let request = StorageRequest {
        container_id: bundle.file_name()?.to_string_lossy().into_owned(),
        ..StorageRequest::default()
    };
    match PluginSet::load(&manifest, cache_dir)
        .and_then(|set| set.storage(&state.driver, StorageOp::Usage, &request))
    {
        Ok(o) => match o.answer {
            StorageAnswer::Usage { size, inodes } => Some((size, inodes)),
            _ => None,
        },
        Err(e) => {
            tracing::warn!("{}", crate::error_chain(&e));
            None
        }
    }
}

/// Makes and releases container root filesystems from unpacked layers.
pub trait RootfsDriver {
    /// Mount (or build) at `rootfs` a writable tree of `layers` (bottom first); `bundle`
    /// is the container's directory, where the driver may keep its writable state.
    fn prepare(&self, layers: &[PathBuf], bundle: &Path, rootfs: &Path)
    -> Result<(), OverlayError>;
    /// Undo [`RootfsDriver::prepare`]; releasing an unprepared rootfs is fine.
    fn release(&self, rootfs: &Path) -> Result<(), OverlayError>;
}

/// The native fast path (`--storage-driver native-overlay`): overlayfs with `lowerdir` =
/// the layers, `upperdir`/`workdir` = `bundle/upper`, `bundle/work`.
pub struct NativeOverlay;

impl RootfsDriver for NativeOverlay {
    fn prepare(
        &self,
        layers: &[PathBuf],
        bundle: &Path,
        rootfs: &Path,
    ) -> Result<(), OverlayError> {
        mount_overlay(layers, &bundle.join("upper"), &bundle.join("work"), rootfs)
    }

    fn release(&self, rootfs: &Path) -> Result<(), OverlayError> {
        unmount_one(rootfs)
    }
}
