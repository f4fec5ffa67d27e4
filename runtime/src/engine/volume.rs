//! Named volumes (Docker's `docker volume` and the volumes of `docker run -v`): the
//! records rwasm keeps of them and the calls of their volume driver plugins.
//!
//! A record (`<data-root>/volume-records/NAME.json`, written atomically) holds what
//! `volume inspect` shows: name, driver, labels, options, creation time, mountpoint,
//! whether it is anonymous (made for one container, removed by `rm -v` and `--rm`). The
//! data belong to the driver: the first-party `local` driver (`volume_local.wasm`, see
//! [`builtin_local`]) keeps it in `<data-root>/volumes/NAME/_data`, as Docker does.
//! A volume is in use while a container record lists it in its mounts; such a volume is
//! not removed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{RecordError, Records};
use crate::plugin::volume::{Scope, VolAnswer, VolOp, VolumeInfo};
use crate::plugin::{PluginError, PluginSet};

/// Where the first-party `volume_local.wasm` is installed.
pub const LOCAL_WASM_PATH: &str = "/usr/local/lib/rwasm/plugins/volume_local.wasm";
/// The default driver (Docker's `local`).
pub const DEFAULT_DRIVER: &str = "local";

/// Errors of the volume store.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A file or directory operation failed.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record is not valid JSON.
    #[error("volume record {} is corrupt", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The name breaks Docker's rule.
    #[error("invalid volume name `{name}`: use [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least 2 characters)")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// No record of that name.
    #[error("no such volume: {name}")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The volume exists with another driver.
    #[error("volume {name} exists with driver `{driver}`, not `{asked}`")]
    OtherDriver {
        /// Volume name.
        name: String,
        /// Its driver.
        driver: String,
        /// The driver asked for.
        asked: String,
    },
    /// Containers use it.
    #[error("volume {name} is in use by container {}", containers.join(", "))]
    InUse {
        /// Volume name.
        name: String,
        /// Names of the containers that list it.
        containers: Vec<String>,
    },
    /// `-o KEY=VALUE` or `--label KEY=VALUE` without `=`.
    #[error("{flag} `{value}`: expected KEY=VALUE")]
    BadPair {
        /// `--opt` or `--label`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// A `-v`, `--tmpfs` value is malformed.
    #[error("{flag} `{value}`: {reason}")]
    BadFlag {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The built-in `local` driver's component is nowhere.
    #[error("the built-in `local` volume driver (volume_local.wasm) is not installed; searched: {}", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoLocal {
        /// Paths looked at.
        searched: Vec<PathBuf>,
    },
    /// The driver answered no path for a mount.
    #[error("volume driver `{driver}` gave no mountpoint for volume {name}")]
    NoMountpoint {
        /// Driver.
        driver: String,
        /// Volume name.
        name: String,
    },
    /// A driver call failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Container records could not be read.
    #[error(transparent)]
    Records(#[from] RecordError),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io { what, path, source }
}

/// What rwasm keeps about a volume; serialised as Docker's `volume inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeRecord {
    /// Volume name.
    pub name: String,
    /// Its driver's name (`local`, or a `volume-driver` plugin of the manifest).
    pub driver: String,
    /// Host path of its data as the driver reported it.
    pub mountpoint: PathBuf,
    /// `--label KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// `-o KEY=VALUE` driver options.
    pub options: BTreeMap<String, String>,
    /// The driver's scope as its `capabilities` (`/VolumeDriver.Capabilities`) answers
    /// it: `local` or `global`.
    pub scope: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Made for one container (`-v /path`, an image's `Volumes`): `rm -v` and `--rm`
    /// remove it, `volume prune` without `--all` considers only these.
    #[serde(default)]
    pub anonymous: bool,
    /// The manifest that holds the driver, for drivers other than the built-in `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// What the driver's `get` reported as the volume's status (Docker's `Status`, shown
    /// by `volume inspect` when the driver gives one); never saved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status: BTreeMap<String, String>,
}

impl VolumeRecord {
    /// A record for a volume that driver `driver` (from `manifest`) reports but rwasm has
    /// no record of (made behind rwasm's back, or by another tool using the driver).
    fn reported(
        driver: &str,
        manifest: Option<PathBuf>,
        scope: &str,
        info: VolumeInfo,
    ) -> VolumeRecord {
        VolumeRecord {
            name: info.name,
            driver: driver.to_string(),
            mountpoint: info.mountpoint.unwrap_or_default(),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            scope: scope.to_string(),
            created_at: info.created_at.unwrap_or_default(),
            anonymous: false,
            manifest,
            status: info.status.into_iter().collect(),
        }
    }

    /// This record with what the driver reports: its mountpoint, status and (when the
    /// record has none) creation time.
    fn with_info(mut self, info: VolumeInfo) -> VolumeRecord {
        if let Some(m) = info.mountpoint {
            self.mountpoint = m;
        }
        self.status = info.status.into_iter().collect();
        if self.created_at.is_empty()
            && let Some(c) = info.created_at
        {
            self.created_at = c;
        }
        self
    }
}

/// What [`VolumeStore::list_all`] and [`VolumeStore::inspect`] found: the volumes, and a
/// warning per driver that could not be asked (its volumes are shown as recorded).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The volumes, by name then driver.
    pub volumes: Vec<VolumeRecord>,
    /// One line per driver that failed, naming it and the cause.
    pub warnings: Vec<String>,
}

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Volume name; a random 64-hex-digit one when `None` (as Docker).
    pub name: Option<String>,
    /// Driver name; [`DEFAULT_DRIVER`] when `None`.
    pub driver: Option<String>,
    /// Driver options, in order.
    pub options: Vec<(String, String)>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// See [`VolumeRecord::anonymous`].
    pub anonymous: bool,
}

/// Splits `KEY=VALUE` of `flag` (`--opt`, `--label`).
///
/// Errors: [`VolumeError::BadPair`] without `=` or with an empty key.
pub fn parse_pair(flag: &'static str, value: &str) -> Result<(String, String), VolumeError> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(VolumeError::BadPair {
            flag,
            value: value.to_string(),
        }),
    }
}

/// Checks Docker's volume name rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
///
/// Errors: [`VolumeError::InvalidName`].
pub fn check_name(name: &str) -> Result<(), VolumeError> {
    let mut c = name.chars();
    let ok = name.len() >= 2
        && c.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && c.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// The first-party `local` volume driver: a manifest for `volume_local.wasm` written to
/// `<data-root>/volume-driver/local.toml`, granted `<data-root>/volumes` (its state and
/// the volumes' data). The component is `$RWASM_PLUGIN_DIR/volume_local.wasm`, or beside
/// the `rwasm` binary, or [`LOCAL_WASM_PATH`].
///
/// Errors: [`VolumeError::NoLocal`], or I/O naming the file.
pub fn builtin_local(data_root: &Path) -> Result<PathBuf, VolumeError> {
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("RWASM_PLUGIN_DIR") {
        searched.push(PathBuf::from(dir).join("volume_local.wasm"));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        searched.push(dir.join("volume_local.wasm"));
    }
    searched.push(PathBuf::from(LOCAL_WASM_PATH));
    let Some(wasm) = searched.iter().find(|p| p.is_file()).cloned() else {
        return Err(VolumeError::NoLocal { searched });
    };
    let data = data_root.join("volumes");
    fs::create_dir_all(&data).map_err(io_err("create", &data))?;
    let data = data.canonicalize().map_err(io_err("resolve", &data))?;
    let dir = data_root.join("volume-driver");
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let text = format!(
        r#"# Written by rwasm: the first-party `local` volume driver (volume-local).
[[plugin]]
name = "local"
path = {wasm:?}
kind = "volume-driver"
timeout-ms = 10000
[plugin.config]
root = {data:?}
state-dir = "/volumes"
[plugin.grants]
dirs = {{ {data:?} = "/volumes:rw" }}
"#,
        wasm = wasm.display().to_string(),
        data = data.display().to_string(),
    );
    let manifest = dir.join("local.toml");
    let unchanged = fs::read_to_string(&manifest).is_ok_and(|t| t == text);
    if !unchanged {
        super::state::write_atomic(&manifest, text.as_bytes()).map_err(|e| VolumeError::Io {
            what: "write",
            path: manifest.clone(),
            source: io::Error::other(crate::error_chain(&e)),
        })?;
    }
    Ok(manifest)
}

/// The scope `driver` of `set` reports (`/VolumeDriver.Capabilities`), as Docker shows
/// it: `local` or `global`.
fn scope(set: &PluginSet, driver: &str) -> Result<&'static str, VolumeError> {
    Ok(match set.volume(driver, &VolOp::Capabilities)? {
        VolAnswer::Capabilities(Scope::Global) => "global",
        _ => "local",
    })
}

/// The volumes of one data root.
pub struct VolumeStore {
    data_root: PathBuf,
    records: PathBuf,
    cache_dir: PathBuf,
}

impl VolumeStore {
    /// The store of `data_root`; plugins compile into `cache_dir`. Nothing is created yet.
    pub fn new(data_root: &Path, cache_dir: &Path) -> VolumeStore {
        VolumeStore {
            data_root: data_root.to_path_buf(),
            records: data_root.join("volume-records"),
            cache_dir: cache_dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.records.join(format!("{name}.json"))
    }

    /// Runs `f` with the plugin set that holds `driver`: `plugins` when its manifest has
    /// it (or the record's `manifest`), else the built-in `local`.
    fn with_driver<T>(
        &self,
        plugins: &PluginSet,
        driver: &str,
        manifest: Option<&Path>,
        f: impl FnOnce(&PluginSet, Option<PathBuf>) -> Result<T, VolumeError>,
    ) -> Result<T, VolumeError> {
        if plugins.has_volume_driver(driver) {
            return f(plugins, plugins.manifest_path().map(Path::to_path_buf));
        }
        if let Some(m) = manifest {
            let set = PluginSet::load(m, &self.cache_dir)?;
            return f(&set, Some(m.to_path_buf()));
        }
        if driver == DEFAULT_DRIVER {
            let m = builtin_local(&self.data_root)?;
            let set = PluginSet::load(&m, &self.cache_dir)?;
            return f(&set, None);
        }
        Err(PluginError::NoVolumeDriver {
            name: driver.to_string(),
            manifest: plugins.manifest_path().map(Path::to_path_buf),
        }
        .into())
    }

    /// The drivers to ask for `list` and `get`: the manifest's volume drivers, the
    /// built-in `local`, and the drivers of records made from other manifests; each as
    /// (name, the manifest of its record, `None` for the manifest's or the built-in).
    fn drivers(
        &self,
        plugins: &PluginSet,
        records: &[VolumeRecord],
    ) -> Vec<(String, Option<PathBuf>)> {
        let mut out: Vec<(String, Option<PathBuf>)> = plugins
            .volume_drivers()
            .into_iter()
            .map(|d| (d.to_string(), None))
            .collect();
        if !plugins.has_volume_driver(DEFAULT_DRIVER) {
            out.push((DEFAULT_DRIVER.to_string(), None));
        }
        for r in records {
            let key = (r.driver.clone(), r.manifest.clone());
            if !plugins.has_volume_driver(&r.driver) && r.manifest.is_some() && !out.contains(&key)
            {
                out.push(key);
            }
        }
        out
    }

    /// Every volume, as Docker's `volume ls` finds them: each driver's `list`
    /// (`/VolumeDriver.List`) merged with rwasm's records by driver and name. A volume a
    /// driver reports without a record is listed (no labels, no options); a record its
    /// driver does not report any more is left out, as Docker leaves it out; the records
    /// of a driver that cannot be asked are listed as recorded, with a warning.
    ///
    /// Errors: the records cannot be read.
    pub fn list_all(&self, plugins: &PluginSet) -> Result<Listing, VolumeError> {
        let records = self.list()?;
        let mut listing = Listing::default();
        for (driver, manifest) in self.drivers(plugins, &records) {
            let mine = records
                .iter()
                .filter(|r| r.driver == driver && (manifest.is_none() || r.manifest == manifest));
            let asked = self.with_driver(plugins, &driver, manifest.as_deref(), |set, m| {
                let scope = scope(set, &driver)?;
                match set.volume(&driver, &VolOp::List)? {
                    VolAnswer::Volumes(v) => Ok((v, m, scope)),
                    _ => Ok((Vec::new(), m, scope)),
                }
            });
            match asked {
                Ok((reported, m, scope)) => {
                    let m = if driver == DEFAULT_DRIVER && !plugins.has_volume_driver(&driver) {
                        None
                    } else {
                        m
                    };
                    for info in reported {
                        let volume = match mine.clone().find(|r| r.name == info.name) {
                            Some(r) => r.clone().with_info(info),
                            None => VolumeRecord::reported(&driver, m.clone(), scope, info),
                        };
                        listing.volumes.push(volume);
                    }
                }
                Err(e) => {
                    listing.warnings.push(format!(
                        "volume driver `{driver}`: cannot list its volumes: {}",
                        crate::error_chain(&e)
                    ));
                    listing.volumes.extend(mine.cloned());
                }
            }
        }
        listing
            .volumes
            .sort_by(|a, b| (&a.name, &a.driver).cmp(&(&b.name, &b.driver)));
        Ok(listing)
    }

    /// Volume `name` as Docker's `volume inspect` shows it: its driver's `get`
    /// (`/VolumeDriver.Get`) gives the mountpoint and status, the record the rest; a volume
    /// without a record is looked for with every driver's `get`. A recorded volume whose
    /// driver cannot be asked is shown as recorded, with a warning.
    ///
    /// Errors: [`VolumeError::NotFound`] when neither a record nor a driver has it.
    pub fn inspect(&self, plugins: &PluginSet, name: &str) -> Result<Listing, VolumeError> {
        let get = |driver: &str, manifest: Option<&Path>| {
            self.with_driver(plugins, driver, manifest, |set, m| {
                match set.volume(
                    driver,
                    &VolOp::Get {
                        name: name.to_string(),
                    },
                )? {
                    VolAnswer::Volume(v) => Ok((v, m, scope(set, driver)?)),
                    _ => Err(VolumeError::NotFound {
                        name: name.to_string(),
                    }),
                }
            })
        };
        match self.get(name) {
            Ok(r) => Ok(match get(&r.driver, r.manifest.as_deref()) {
                Ok((info, _, _)) => Listing {
                    volumes: vec![r.with_info(info)],
                    warnings: Vec::new(),
                },
                Err(e) => Listing {
                    warnings: vec![format!(
                        "volume driver `{}`: cannot get volume {name}: {}",
                        r.driver,
                        crate::error_chain(&e)
                    )],
                    volumes: vec![r],
                },
            }),
            Err(VolumeError::NotFound { .. }) => {
                for (driver, manifest) in self.drivers(plugins, &self.list()?) {
                    if let Ok((info, m, scope)) = get(&driver, manifest.as_deref()) {
                        let m = if driver == DEFAULT_DRIVER && !plugins.has_volume_driver(&driver) {
                            None
                        } else {
                            m
                        };
                        return Ok(Listing {
                            volumes: vec![VolumeRecord::reported(&driver, m, scope, info)],
                            warnings: Vec::new(),
                        });
                    }
                }
                Err(VolumeError::NotFound {
                    name: name.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The record of `name`.
    ///
    /// Errors: [`VolumeError::NotFound`], [`VolumeError::Corrupt`], I/O naming the file.
    pub fn get(&self, name: &str) -> Result<VolumeRecord, VolumeError> {
        check_name(name)?;
        let path = self.path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound {
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| VolumeError::Corrupt { path, source })
    }

    /// Every record, by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>, VolumeError> {
        let entries = match fs::read_dir(&self.records) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &self.records)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io_err("list", &self.records))?;
            let file = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".json")
                && check_name(name).is_ok()
            {
                match self.get(name) {
                    Ok(r) => out.push(r),
                    Err(VolumeError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a volume (Docker's `volume create`): the driver's `create`, then its
    /// `path`, then the record. Creating an existing name with the same driver returns
    /// the existing record, as Docker does.
    ///
    /// Errors: a bad name, [`VolumeError::OtherDriver`], the driver's failure; after a
    /// failure to save the record the driver's volume is removed again.
    pub fn create(
        &self,
        plugins: &PluginSet,
        req: CreateRequest,
    ) -> Result<VolumeRecord, VolumeError> {
        let name = match req.name {
            Some(n) => n,
            None => super::run::new_id().map_err(io_err("read", Path::new("/dev/urandom")))?,
        };
        check_name(&name)?;
        let driver = req.driver.unwrap_or_else(|| DEFAULT_DRIVER.to_string());
        match self.get(&name) {
            Ok(r) if r.driver == driver => return Ok(r),
            Ok(r) => {
                return Err(VolumeError::OtherDriver {
                    name,
                    driver: r.driver,
                    asked: driver,
                });
            }
            Err(VolumeError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        fs::create_dir_all(&self.records).map_err(io_err("create", &self.records))?;
        self.with_driver(plugins, &driver, None, |set, manifest| {
            set.volume(
                &driver,
                &VolOp::Create {
                    name: name.clone(),
                    options: req.options.clone(),
                },
            )?;
            let saved = (|| {
                let scope = scope(set, &driver)?;
                let mountpoint = match set.volume(&driver, &VolOp::Path { name: name.clone() })? {
                    VolAnswer::Path(Some(p)) => p,
                    _ => {
                        return Err(VolumeError::NoMountpoint {
                            driver: driver.clone(),
                            name: name.clone(),
                        });
                    }
                };
                let record = VolumeRecord {
                    status: BTreeMap::new(),
                    name: name.clone(),
                    driver: driver.clone(),
                    mountpoint,
                    labels: req.labels.clone(),
                    options: req.options.iter().cloned().collect(),
                    scope: scope.to_string(),
                    created_at: super::state::now_rfc3339(),
                    anonymous: req.anonymous,
                    manifest: if driver == DEFAULT_DRIVER && !set.has_volume_driver(&driver) {
                        None
                    } else {
                        manifest.clone()
                    },
                };
                self.save(&record)?;
                Ok(record)
            })();
            if saved.is_err()
                && let Err(e) = set.volume(&driver, &VolOp::Remove { name: name.clone() })
            {
                tracing::warn!(volume = %name, "{}", crate::error_chain(&e));
            }
            saved
        })
    }

    fn save(&self, r: &VolumeRecord) -> Result<(), VolumeError> {
        let path = self.path(&r.name);
        let bytes = serde_json::to_vec_pretty(r).map_err(|source| VolumeError::Corrupt {
            path: path.clone(),
            source,
        })?;
        super::state::write_atomic(&path, &bytes).map_err(|e| VolumeError::Io {
            what: "write",
            path,
            source: io::Error::other(crate::error_chain(&e)),
        })
    }

    /// Names of the containers whose records list volume `name` among their mounts,
    /// except the container with id `except`.
    pub fn users(&self, name: &str, except: Option<&str>) -> Result<Vec<String>, VolumeError> {
        let records = Records::new(&self.data_root);
        Ok(records
            .all()?
            .into_iter()
            .filter(|c| Some(c.id.as_str()) != except)
            .filter(|c| {
                c.mounts
                    .iter()
                    .any(|m| m.typ == "volume" && m.source == name)
            })
            .map(|c| c.name)
            .collect())
    }

    /// Removes volume `name` (Docker's `volume rm`): refused while a container uses it;
    /// with `force` a missing volume is not an error. A volume a driver reports without a
    /// record is removed through that driver.
    ///
    /// Errors: [`VolumeError::InUse`] naming the containers, [`VolumeError::NotFound`],
    /// the driver's failure (the record is kept then).
    pub fn remove(&self, plugins: &PluginSet, name: &str, force: bool) -> Result<(), VolumeError> {
        let record = match self.get(name) {
            Ok(r) => r,
            // A volume only its driver knows (no record): removed through that driver.
            Err(VolumeError::NotFound { .. }) => match self.inspect(plugins, name) {
                Ok(found) if !found.volumes.is_empty() => found.volumes[0].clone(),
                _ if force => return Ok(()),
                _ => {
                    return Err(VolumeError::NotFound {
                        name: name.to_string(),
                    });
                }
            },
            Err(e) => return Err(e),
        };
        let users = self.users(name, None)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                containers: users,
            });
        }
        self.remove_unchecked(plugins, &record)
    }

    /// Removes volume `name` without the in-use check (for a container's own anonymous
    /// volumes while its record goes); a missing one is not an error.
    pub fn force_remove(&self, plugins: &PluginSet, name: &str) -> Result<(), VolumeError> {
        match self.get(name) {
            Ok(r) => self.remove_unchecked(plugins, &r),
            Err(VolumeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn remove_unchecked(&self, plugins: &PluginSet, r: &VolumeRecord) -> Result<(), VolumeError> {
        self.with_driver(plugins, &r.driver, r.manifest.as_deref(), |set, _| {
            set.volume(
                &r.driver,
                &VolOp::Remove {
                    name: r.name.clone(),
                },
            )?;
            Ok(())
        })?;
        let path = self.path(&r.name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Removes the volumes no container uses (Docker 23's `volume prune`: anonymous ones
    /// only, every unused one with `all`); returns the names removed.
    pub fn prune(&self, plugins: &PluginSet, all: bool) -> Result<Vec<String>, VolumeError> {
        let mut removed = Vec::new();
        for r in self.list()? {
            if (all || r.anonymous) && self.users(&r.name, None)?.is_empty() {
                self.remove_unchecked(plugins, &r)?;
                removed.push(r.name);
            }
        }
        Ok(removed)
    }

    /// Makes volume `name` available for container `id` (the driver's `mount`); returns
    /// the host path to bind.
    pub fn mount(&self, plugins: &PluginSet, name: &str, id: &str) -> Result<PathBuf, VolumeError> {
        let r = self.get(name)?;
        self.with_driver(
            plugins,
            &r.driver,
            r.manifest.as_deref(),
            |set, _| match set.volume(
                &r.driver,
                &VolOp::Mount {
                    name: r.name.clone(),
                    container_id: id.to_string(),
                },
            )? {
                VolAnswer::Path(Some(p)) => Ok(p),
                _ => Err(VolumeError::NoMountpoint {
                    driver: r.driver.clone(),
                    name: r.name.clone(),
                }),
            },
        )
    }

    /// The driver's `unmount` of volume `name` for container `id`; a volume without a
    /// record any more is not an error.
    pub fn unmount(&self, plugins: &PluginSet, name: &str, id: &str) -> Result<(), VolumeError> {
        let r = match self.get(name) {
            Ok(r) => r,
            Err(VolumeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.with_driver(plugins, &r.driver, r.manifest.as_deref(), |set, _| {
            set.volume(
                &r.driver,
                &VolOp::Unmount {
                    name: r.name.clone(),
                    container_id: id.to_string(),
                },
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "data", "my_vol.1-x", "0a"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-ab", "a/b", "..", "a b", ".x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_need_a_key() {
        assert_eq!(
            parse_pair("--opt", "o=size=64m").unwrap(),
            ("o".to_string(), "size=64m".to_string())
        );
        assert!(parse_pair("--opt", "novalue").is_err());
        assert!(parse_pair("--label", "=x").is_err());
    }
}
