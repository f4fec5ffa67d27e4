//! storage-vfs: rwasm's copying storage driver (world `storage-driver` of
//! `rwasm:plugin@0.3.0`), after containers/storage's `vfs` graph driver, for file systems
//! without overlayfs.
//!
//! `prepare`: the layers are applied, bottom first, onto the plain directory
//! `<state>/<id>/tree` (once: a `<state>/<id>/complete` marker makes a restart reuse the
//! tree, which is the container's writable layer), then `tree` is bind-mounted at
//! `<state>/<id>/rootfs` (`ro` when `read-only`). `release` unmounts and removes
//! `<state>/<id>`. `usage` sums the bytes and inodes of `tree`.
//!
//! The walk order, the layout and the marker are this driver's; each layer's copy is the
//! host's `storage-host.copy-layer`, because WASI 0.2 cannot chown, chmod, mknod, set
//! xattrs or a symlink's times, so a copy through WASI files alone would lose owners,
//! modes and device nodes and give a different tree than `overlay`. The host applies
//! whiteouts (0:0 character devices) and opaque directories as overlayfs does.

wit_bindgen::generate!({ world: "storage-driver", path: "../../sdk/wit" });

use std::cell::RefCell;
use std::fs;

use exports::rwasm::plugin::storage::{Guest, LayerUsage, PrepareRequest, Prepared};
use rwasm::plugin::storage_host::{self, MountKind, MountRequest};
use rwasm::plugin::types::{ConfigEntry, ConfigValue, Error, ErrorCode};

thread_local! {
    static STATE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn error(code: ErrorCode, message: String) -> Error {
    Error { code, message }
}

fn io(what: &str, path: &str, e: std::io::Error) -> Error {
    error(ErrorCode::Unavailable, format!("cannot {what} {path}: {e}"))
}

/// `<state>/<id>`, with the id checked (a plain name).
fn container_dir(id: &str) -> Result<String, Error> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("container-id `{id}` is not a plain name"),
        ));
    }
    Ok(format!("{}/{id}", STATE.with(|s| s.borrow().clone())))
}

fn mkdir(path: &str) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|e| io("create", path, e))
}

fn walk(path: &str, usage: &mut LayerUsage) -> Result<(), Error> {
    for e in fs::read_dir(path).map_err(|e| io("read", path, e))? {
        let e = e.map_err(|e| io("read", path, e))?;
        let p = format!("{path}/{}", e.file_name().to_string_lossy());
        let m = fs::symlink_metadata(&p).map_err(|e| io("read", &p, e))?;
        usage.inodes += 1;
        // Docker's count (`directory.Size`): file and symlink bytes, not directories'.
        if m.is_dir() {
            walk(&p, usage)?;
        } else {
            usage.size += m.len();
        }
    }
    Ok(())
}

struct Vfs;

impl Guest for Vfs {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        for e in config {
            if let ("state-dir", ConfigValue::Text(t)) = (e.key.as_str(), e.value) {
                STATE.with(|s| *s.borrow_mut() = t);
            }
        }
        if STATE.with(|s| s.borrow().is_empty()) {
            return Err(error(
                ErrorCode::InvalidInput,
                "no `state-dir` in the configuration".to_string(),
            ));
        }
        Ok(())
    }

    fn prepare(req: PrepareRequest) -> Result<Prepared, Error> {
        if let Some((k, _)) = req.options.first() {
            return Err(error(
                ErrorCode::InvalidInput,
                format!("unknown storage option `{k}`"),
            ));
        }
        let dir = container_dir(&req.container_id)?;
        let (tree, rootfs, complete) = (
            format!("{dir}/tree"),
            format!("{dir}/rootfs"),
            format!("{dir}/complete"),
        );
        if fs::metadata(&complete).is_err() {
            // A copy cut short (a crash) is redone from scratch.
            storage_host::remove(&tree)?;
            mkdir(&tree)?;
            for layer in &req.layers {
                storage_host::copy_layer(&layer.path, &tree)?;
            }
            fs::write(&complete, b"").map_err(|e| io("write", &complete, e))?;
        }
        mkdir(&rootfs)?;
        let mut options = Vec::new();
        if req.read_only {
            options.push("ro".to_string());
        }
        storage_host::mount(&MountRequest {
            kind: MountKind::Bind,
            source: Some(tree),
            target: rootfs.clone(),
            options,
        })?;
        Ok(Prepared { rootfs })
    }

    fn release(container_id: String) -> Result<(), Error> {
        let dir = container_dir(&container_id)?;
        let rootfs = format!("{dir}/rootfs");
        if fs::metadata(&rootfs).is_ok() {
            storage_host::unmount(&rootfs)?;
        }
        storage_host::remove(&dir)
    }

    fn usage(container_id: String) -> Result<LayerUsage, Error> {
        let tree = format!("{}/tree", container_dir(&container_id)?);
        let mut usage = LayerUsage { size: 0, inodes: 0 };
        walk(&tree, &mut usage)?;
        Ok(usage)
    }
}

export!(Vfs);
