//! storage-overlay: rwasm's default storage driver (world `storage-driver` of
//! `rwasm:plugin@0.3.0`), after containers/storage's `overlay` graph driver.
//!
//! `prepare`: one overlayfs mount at `<state>/<id>/merged` with the layers as lower
//! directories (top layer first in `lowerdir=`, as overlayfs wants), `<state>/<id>/upper`
//! and `<state>/<id>/work` as the writable layer; `read-only` adds `ro`. The writable
//! layer survives a stop and the next `prepare` (a restart) mounts it again. `release`
//! unmounts and removes `<state>/<id>`; nothing there is fine. `usage` sums the bytes
//! and inodes of `upper`.
//!
//! `<state>` is the `state-dir` the host passes to `configure`. Options: none yet; an
//! unknown `--storage-opt` is refused.

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

/// `<state>/<id>`, with the id checked (64 hex digits or a plain name).
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

struct Overlay;

impl Guest for Overlay {
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
        if req.layers.is_empty() {
            return Err(error(
                ErrorCode::InvalidInput,
                "layers: an overlay needs at least one layer".to_string(),
            ));
        }
        let dir = container_dir(&req.container_id)?;
        let (upper, work, merged) = (
            format!("{dir}/upper"),
            format!("{dir}/work"),
            format!("{dir}/merged"),
        );
        for d in [&upper, &work, &merged] {
            mkdir(d)?;
        }
        let lower: Vec<&str> = req.layers.iter().rev().map(|l| l.path.as_str()).collect();
        let mut options = vec![
            format!("lowerdir={}", lower.join(":")),
            format!("upperdir={upper}"),
            format!("workdir={work}"),
        ];
        if req.read_only {
            options.push("ro".to_string());
        }
        storage_host::mount(&MountRequest {
            kind: MountKind::Overlay,
            source: None,
            target: merged.clone(),
            options,
        })?;
        Ok(Prepared { rootfs: merged })
    }

    fn release(container_id: String) -> Result<(), Error> {
        let dir = container_dir(&container_id)?;
        let merged = format!("{dir}/merged");
        if fs::metadata(&merged).is_ok() {
            storage_host::unmount(&merged)?;
        }
        storage_host::remove(&dir)
    }

    fn usage(container_id: String) -> Result<LayerUsage, Error> {
        let upper = format!("{}/upper", container_dir(&container_id)?);
        let mut usage = LayerUsage { size: 0, inodes: 0 };
        walk(&upper, &mut usage)?;
        Ok(usage)
    }
}

export!(Overlay);
