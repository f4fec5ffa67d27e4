//! storage-hostile: a storage driver (world `storage-driver` of `rwasm:plugin@0.3.0`)
//! that first mounts what it may (a tmpfs at `<state>/<id>/ok`) and then asks the host
//! for what it may not, chosen by its config key `mode`:
//!
//! - `outside` (default): a tmpfs at the config key `target` (outside its directory, or
//!   a symlink in it that the test made pointing out);
//! - `source`: a bind mount of `/etc` (not a layer) at `<state>/<id>/bad`;
//! - `lowerdir`: an overlay whose `lowerdir=` is `/etc`;
//! - `layer-rw`: a bind of its first layer at `<state>/<id>/l` without options, then a
//!   write of `l/hostile-was-here` through its read-write preopen of `<state>`;
//! - `layer-explicit-rw`: the same bind with the option `rw`;
//! - `rebind`: a `ro` bind of its first layer at `<state>/<id>/l`, a bind of that at
//!   `<state>/<id>/m` with only `nosuid` (a remount that would drop `ro`), then a write
//!   of `m/hostile-was-here`.
//!
//! It returns the host's refusal, so a test sees the message and checks that the host
//! unmounted `<state>/<id>/ok` after the failed `prepare`.

wit_bindgen::generate!({ world: "storage-driver", path: "../../sdk/wit" });

use std::cell::RefCell;
use std::fs;

use exports::rwasm::plugin::storage::{Guest, LayerUsage, PrepareRequest, Prepared};
use rwasm::plugin::storage_host::{self, MountKind, MountRequest};
use rwasm::plugin::types::{ConfigEntry, ConfigValue, Error, ErrorCode};

thread_local! {
    static CONF: RefCell<(String, String, String)> = RefCell::new((
        String::new(),
        "outside".to_string(),
        "/tmp/rwasm-storage-hostile-target".to_string(),
    ));
}

fn req(
    kind: MountKind,
    source: Option<String>,
    target: String,
    options: Vec<String>,
) -> MountRequest {
    MountRequest {
        kind,
        source,
        target,
        options,
    }
}

/// The path of the request's first (lowest) layer.
fn first_layer(r: &PrepareRequest) -> Result<String, Error> {
    r.layers.first().map(|l| l.path.clone()).ok_or(Error {
        code: ErrorCode::InvalidInput,
        message: "no layer to bind".into(),
    })
}

/// Write `DIR/hostile-was-here`: an error saying the host let it when the write works,
/// else one with the write's own error.
fn write_into(dir: &str) -> Result<(), Error> {
    let file = format!("{dir}/hostile-was-here");
    let message = match fs::write(&file, b"written by storage-hostile\n") {
        Ok(()) => format!("the host let storage-hostile write {file}"),
        Err(e) => format!("cannot write {file}: {e}"),
    };
    Err(Error {
        code: ErrorCode::Internal,
        message,
    })
}

struct Hostile;

impl Guest for Hostile {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        for e in config {
            CONF.with(|c| {
                let mut c = c.borrow_mut();
                match (e.key.as_str(), e.value) {
                    ("state-dir", ConfigValue::Text(t)) => c.0 = t,
                    ("mode", ConfigValue::Text(t)) => c.1 = t,
                    ("target", ConfigValue::Text(t)) => c.2 = t,
                    _ => {}
                }
            });
        }
        Ok(())
    }

    fn prepare(r: PrepareRequest) -> Result<Prepared, Error> {
        let (state, mode, target) = CONF.with(|c| c.borrow().clone());
        let dir = format!("{state}/{}", r.container_id);
        let ok = format!("{dir}/ok");
        let io = |e: std::io::Error| Error {
            code: ErrorCode::Internal,
            message: e.to_string(),
        };
        fs::create_dir_all(&ok).map_err(io)?;
        storage_host::mount(&req(MountKind::Tmpfs, None, ok, vec!["size=1m".into()]))?;
        match mode.as_str() {
            "source" => {
                let bad = format!("{dir}/bad");
                fs::create_dir_all(&bad).map_err(io)?;
                storage_host::mount(&req(MountKind::Bind, Some("/etc".into()), bad, vec![]))?;
            }
            "lowerdir" => {
                let (up, work, merged) = (
                    format!("{dir}/up"),
                    format!("{dir}/work"),
                    format!("{dir}/merged"),
                );
                for d in [&up, &work, &merged] {
                    fs::create_dir_all(d).map_err(io)?;
                }
                storage_host::mount(&req(
                    MountKind::Overlay,
                    None,
                    merged,
                    vec![
                        "lowerdir=/etc".into(),
                        format!("upperdir={up}"),
                        format!("workdir={work}"),
                    ],
                ))?;
            }
            "layer-rw" | "layer-explicit-rw" => {
                let l = format!("{dir}/l");
                fs::create_dir_all(&l).map_err(io)?;
                let options = if mode == "layer-rw" {
                    vec![]
                } else {
                    vec!["rw".into()]
                };
                storage_host::mount(&req(
                    MountKind::Bind,
                    Some(first_layer(&r)?),
                    l.clone(),
                    options,
                ))?;
                write_into(&l)?;
            }
            "rebind" => {
                let (l, m) = (format!("{dir}/l"), format!("{dir}/m"));
                for d in [&l, &m] {
                    fs::create_dir_all(d).map_err(io)?;
                }
                storage_host::mount(&req(
                    MountKind::Bind,
                    Some(first_layer(&r)?),
                    l.clone(),
                    vec!["ro".into()],
                ))?;
                storage_host::mount(&req(
                    MountKind::Bind,
                    Some(l),
                    m.clone(),
                    vec!["nosuid".into()],
                ))?;
                write_into(&m)?;
            }
            _ => storage_host::mount(&req(MountKind::Tmpfs, None, target, vec![]))?,
        }
        Err(Error {
            code: ErrorCode::Internal,
            message: format!("the host let storage-hostile mount ({mode})"),
        })
    }

    fn release(container_id: String) -> Result<(), Error> {
        let (state, _, _) = CONF.with(|c| c.borrow().clone());
        let _ = fs::remove_dir_all(format!("{state}/{container_id}"));
        Ok(())
    }

    fn usage(_container_id: String) -> Result<LayerUsage, Error> {
        Ok(LayerUsage { size: 0, inodes: 0 })
    }
}

export!(Hostile);
