//! volume-local: rwasm's first-party `local` volume driver (world `volume-driver` of
//! `rwasm:plugin@0.3.0`), after Docker's built-in `local` driver
//! (`volume/local/local.go`): a volume is the directory `<root>/NAME/_data`.
//!
//! Options (`rwasm volume create -o`), as Docker's local driver spells them: `type`,
//! `device` and `o`. Without options a volume is a plain directory. `type=tmpfs` (with
//! `device=tmpfs` or no device) makes a tmpfs volume: the host mounts a tmpfs with the
//! comma-separated `o` options (`size=64m`, `mode=1777`, `uid=`, `gid=`, `nr_inodes=`)
//! on `_data` at the first `mount` and unmounts it at the last `unmount`, so its data
//! lives as long as a container uses it, as in Docker. Other types are refused.
//!
//! State, under the granted directory (guest path `state-dir`, default `/volumes`):
//! `NAME/opts` (the options, `key=value` lines, written to a temporary file and renamed)
//! and `NAME/mounts/ID` (one empty file per container the volume is mounted for).
//!
//! Configuration (`[plugin.config]`): `root`, the host path of the granted directory
//! (mountpoints answered to the host are under it); `state-dir`, its guest path; `scope`,
//! what `capabilities` answers (Docker's `Capabilities.Scope`): `local` (the default) or
//! `global`, for a `root` on storage that every machine using the driver shares (NFS).

wit_bindgen::generate!({ world: "volume-driver", path: "../../sdk/wit" });

use std::cell::RefCell;
use std::fs;
use std::io::ErrorKind;

use exports::rwasm::plugin::volume::{DriverCapabilities, Guest, Scope, VolumeInfo};
use rwasm::plugin::types::{ConfigEntry, ConfigValue, Error, ErrorCode};
use rwasm::plugin::volume_host;

thread_local! {
    static CONFIG: RefCell<Settings> = RefCell::new(Settings::default());
}

#[derive(Clone, Debug)]
struct Settings {
    /// Host path of the granted directory.
    root: String,
    /// Guest path of the granted directory.
    state: String,
    /// The scope `capabilities` reports.
    scope: Scope,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            root: String::new(),
            state: "/volumes".to_string(),
            scope: Scope::Local,
        }
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
    }
}

fn io(what: &str, path: &str, e: std::io::Error) -> Error {
    err(ErrorCode::Unavailable, format!("{what} {path}: {e}"))
}

fn settings() -> Settings {
    CONFIG.with(|c| c.borrow().clone())
}

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if name.len() < 2 || !first_ok || !rest_ok {
        return Err(err(
            ErrorCode::InvalidInput,
            format!(
                "invalid volume name `{name}`: use [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least 2 \
                 characters)"
            ),
        ));
    }
    Ok(())
}

/// The tmpfs options of a volume's options, `None` for a plain directory volume.
fn tmpfs_options(options: &[(String, String)]) -> Result<Option<Vec<String>>, Error> {
    let get = |k: &str| {
        options
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    for (k, _) in options {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("unknown option `{k}` (the local driver takes type, device and o)"),
            ));
        }
    }
    match (get("type"), get("device")) {
        (None, None) if get("o").is_none() => Ok(None),
        (Some("tmpfs"), None | Some("tmpfs")) => {
            let o: Vec<String> = get("o")
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            // The options `volume-host` accepts (tmpfs(5)), refused here already so that
            // a bad volume is refused at create, not at its first mount.
            for x in &o {
                let key = x.split_once('=').map_or(x.as_str(), |(k, _)| k);
                let ok = match x.split_once('=') {
                    Some((_, v)) => {
                        !v.is_empty() && ["size", "nr_inodes", "mode", "uid", "gid"].contains(&key)
                    }
                    None => ["ro", "noexec", "nosuid", "nodev"].contains(&key),
                };
                if !ok {
                    return Err(err(
                        ErrorCode::InvalidInput,
                        format!(
                            "tmpfs option `{x}` is not allowed (allowed: size= nr_inodes= \
                             mode= uid= gid= ro noexec nosuid nodev)"
                        ),
                    ));
                }
            }
            Ok(Some(o))
        }
        (Some(t), _) if t != "tmpfs" => Err(err(
            ErrorCode::Unsupported,
            format!("option type=`{t}`: this driver makes directories and tmpfs volumes only"),
        )),
        (Some(_), d) => Err(err(
            ErrorCode::InvalidInput,
            format!(
                "option device=`{}`: a tmpfs volume takes device=tmpfs",
                d.unwrap_or_default()
            ),
        )),
        (None, _) => Err(err(
            ErrorCode::InvalidInput,
            "options device and o need type (e.g. type=tmpfs,device=tmpfs,o=size=64m)",
        )),
    }
}

fn read_opts(dir: &str) -> Result<Vec<(String, String)>, Error> {
    let path = format!("{dir}/opts");
    let text = fs::read_to_string(&path).map_err(|e| io("read", &path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The guest directory of volume `name`, `None` when there is no such volume.
fn lookup(s: &Settings, name: &str) -> Result<Option<String>, Error> {
    check_name(name)?;
    let dir = format!("{}/{name}", s.state);
    match fs::metadata(format!("{dir}/_data")) {
        Ok(m) if m.is_dir() => Ok(Some(dir)),
        Ok(_) => Err(err(
            ErrorCode::Unavailable,
            format!("{dir}/_data is not a directory"),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("stat", &dir, e)),
    }
}

/// The guest directory of volume `name`, which must exist.
fn existing(s: &Settings, name: &str) -> Result<String, Error> {
    lookup(s, name)?.ok_or_else(|| err(ErrorCode::InvalidInput, format!("no such volume: {name}")))
}

fn mounts(dir: &str) -> Result<Vec<String>, Error> {
    let path = format!("{dir}/mounts");
    let entries = match fs::read_dir(&path) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", &path, e)),
    };
    let mut ids = Vec::new();
    for e in entries {
        let e = e.map_err(|e| io("list", &path, e))?;
        ids.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(ids)
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("invalid container id `{id}`"),
        ));
    }
    Ok(())
}

fn host_data(s: &Settings, name: &str) -> String {
    format!("{}/{name}/_data", s.root)
}

/// `secs` since the Unix epoch as RFC 3339 UTC (`2026-12-02T18:31:18Z`), by Howard
/// Hinnant's civil-from-days algorithm.
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A volume as `get` and `list` report it: its host mountpoint, and as its creation time
/// the time its `opts` file was written (once, at `create`).
fn info(s: &Settings, name: &str) -> VolumeInfo {
    let created_at = fs::metadata(format!("{}/{name}/opts", s.state))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| rfc3339(d.as_secs()));
    VolumeInfo {
        name: name.to_string(),
        mountpoint: Some(host_data(s, name)),
        status: Vec::new(),
        created_at,
    }
}

struct Local;

impl Guest for Local {
    fn configure(config: Vec<ConfigEntry>) -> Result<(), Error> {
        let mut s = Settings::default();
        for e in config {
            let ConfigValue::Text(v) = e.value else {
                return Err(err(
                    ErrorCode::InvalidConfig,
                    format!("key `{}`: use a string", e.key),
                ));
            };
            match e.key.as_str() {
                "root" => s.root = v,
                "state-dir" => s.state = v,
                "scope" => {
                    s.scope = match v.as_str() {
                        "local" => Scope::Local,
                        "global" => Scope::Global,
                        _ => {
                            return Err(err(
                                ErrorCode::InvalidConfig,
                                format!("key `scope`: `{v}` is neither local nor global"),
                            ));
                        }
                    }
                }
                k => {
                    return Err(err(
                        ErrorCode::InvalidConfig,
                        format!("unknown key `{k}` (expected root, state-dir or scope)"),
                    ));
                }
            }
        }
        if !s.root.starts_with('/') {
            return Err(err(
                ErrorCode::InvalidConfig,
                "key `root`: give the host path of the granted directory",
            ));
        }
        CONFIG.with(|c| *c.borrow_mut() = s);
        Ok(())
    }

    fn create(name: String, options: Vec<(String, String)>) -> Result<(), Error> {
        let s = settings();
        check_name(&name)?;
        tmpfs_options(&options)?;
        let dir = format!("{}/{name}", s.state);
        if let Some(dir) = lookup(&s, &name)? {
            if read_opts(&dir)? == options {
                return Ok(());
            }
            return Err(err(
                ErrorCode::InvalidInput,
                format!("volume {name} exists with other options"),
            ));
        }
        let data = format!("{dir}/_data");
        fs::create_dir_all(&data).map_err(|e| io("create", &data, e))?;
        let text: String = options.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let tmp = format!("{dir}/opts.tmp");
        let opts = format!("{dir}/opts");
        fs::write(&tmp, text).map_err(|e| io("write", &tmp, e))?;
        fs::rename(&tmp, &opts).map_err(|e| io("rename", &tmp, e))?;
        Ok(())
    }

    fn remove(name: String) -> Result<(), Error> {
        let s = settings();
        let Some(dir) = lookup(&s, &name)? else {
            return Ok(());
        };
        let users = mounts(&dir)?;
        if !users.is_empty() {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("volume {name} is mounted for {}", users.join(", ")),
            ));
        }
        fs::remove_dir_all(&dir).map_err(|e| io("remove", &dir, e))
    }

    fn mount(name: String, container_id: String) -> Result<String, Error> {
        let s = settings();
        check_id(&container_id)?;
        let dir = existing(&s, &name)?;
        let users = mounts(&dir)?;
        if users.is_empty() {
            if let Some(o) = tmpfs_options(&read_opts(&dir)?)? {
                volume_host::mount_tmpfs(&host_data(&s, &name), &o)?;
            }
        }
        let m = format!("{dir}/mounts");
        fs::create_dir_all(&m).map_err(|e| io("create", &m, e))?;
        let f = format!("{m}/{container_id}");
        fs::write(&f, b"").map_err(|e| io("write", &f, e))?;
        Ok(host_data(&s, &name))
    }

    fn unmount(name: String, container_id: String) -> Result<(), Error> {
        let s = settings();
        check_id(&container_id)?;
        let dir = existing(&s, &name)?;
        let f = format!("{dir}/mounts/{container_id}");
        match fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("remove", &f, e)),
        }
        if mounts(&dir)?.is_empty() && tmpfs_options(&read_opts(&dir)?)?.is_some() {
            volume_host::unmount(&host_data(&s, &name))?;
        }
        Ok(())
    }

    fn path(name: String) -> Result<Option<String>, Error> {
        let s = settings();
        existing(&s, &name)?;
        Ok(Some(host_data(&s, &name)))
    }

    /// `/VolumeDriver.Get`: the volume's mountpoint and creation time.
    fn get(name: String) -> Result<VolumeInfo, Error> {
        let s = settings();
        existing(&s, &name)?;
        Ok(info(&s, &name))
    }

    /// `/VolumeDriver.List`: every volume under the state directory, by name.
    fn list() -> Result<Vec<VolumeInfo>, Error> {
        let s = settings();
        let entries = match fs::read_dir(&s.state) {
            Ok(e) => e,
            Err(e) => return Err(io("list", &s.state, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| io("list", &s.state, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_ok() && existing(&s, &name).is_ok() {
                out.push(info(&s, &name));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn capabilities() -> DriverCapabilities {
        DriverCapabilities {
            scope: settings().scope,
        }
    }
}

export!(Local);
