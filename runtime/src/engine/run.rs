//! `rwasm run IMAGE [CMD...]`: a Docker-style container run attached, from the image to
//! the exit code. Each run gets a bundle under `<data-root>/containers/<id>`: a
//! config.json from Docker's defaults, and an overlay rootfs whose upper layer holds the
//! container's writes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::linux::overlay::OverlayError;
use crate::plugin::PluginSet;

use super::container::{self, CreateOptions, EngineError};
use super::docker::{FlagError, RunFlags, docker_spec};
use super::image::{
    EXPOSED_PORTS_ANNOTATION, IMAGE_ID_ANNOTATION, IMAGE_MANIFEST_ANNOTATION, ImageError,
    ImageStore,
};
use super::record::{ContainerRecord, RecordError, Records, RestartPolicy, RunState};
use super::state::{StateStore, now_rfc3339};

/// Annotation holding the Docker-style container name.
pub const NAME_ANNOTATION: &str = "org.rwasm.name";
/// Annotation saying rwasm mounted the container's rootfs (an overlay) and `delete`
/// must unmount it.
pub const ROOTFS_MOUNT_ANNOTATION: &str = "org.rwasm.rootfs-mount";
/// Annotation holding the image the container was made from.
pub const IMAGE_ANNOTATION: &str = "org.rwasm.image";

/// A failed run, before or after the container existed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A `docker run` flag has a value Docker would refuse.
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// The image cannot be resolved to a rootfs.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Create, start, wait or delete of the container failed (boxed: the error is large).
    #[error(transparent)]
    Engine(#[from] Box<EngineError>),
    /// `--network` is invalid, or its driver failed to connect the container.
    #[error(transparent)]
    Network(#[from] super::network::NetworkError),
    /// The container's storage driver failed.
    #[error(transparent)]
    Storage(#[from] super::storage::StorageError),
    /// Mounting the overlay rootfs (image as lower, the run's `upper` and `work`) failed.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// `--name` is taken, or the container record cannot be written.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A volume, bind or tmpfs of `-v`/`--tmpfs` could not be set up.
    #[error(transparent)]
    Volume(#[from] super::volume::VolumeError),
    /// `--name` does not match Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
    #[error("invalid container name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    BadName(String),
    /// No command was given and the image has no `/bin/sh` to default to; carries the image.
    #[error("no command given and image {0:?} has no default command")]
    NoCommand(String),
    /// A file operation on the run's bundle failed.
    #[error("cannot {what} {path}")]
    Io {
        /// The operation, as a verb: `read`, `create`, `list`, `write`.
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl RunError {
    /// What init reported about the user process (Docker's 126/127), if anything.
    pub fn failure_kind(&self) -> Option<crate::linux::sync::FailureKind> {
        match self {
            RunError::Engine(e) => e.failure_kind(),
            _ => None,
        }
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { what, path, source }
}

/// What to run.
pub struct RunRequest<'a> {
    /// `busybox` (or `busybox:latest`), or a rootfs directory path (see [`ImageStore::resolve`]).
    pub image: &'a str,
    /// The command and its arguments; empty means `sh` when the image has `/bin/sh`.
    pub args: Vec<String>,
    /// `--name`; defaults to the first 12 hex digits of the id, as in Docker.
    pub name: Option<String>,
    /// `--rm`: remove the bundle (overlay upper layer included) once the container exits.
    pub rm: bool,
    /// The resource and process flags that shape config.json.
    pub flags: RunFlags,
    /// The loaded plugins whose hooks run at each lifecycle point; may be empty.
    pub plugins: &'a PluginSet,
    /// The data root: images under `images/`, bundles under `containers/<id>`.
    pub data_root: &'a Path,
    /// The compiled-plugin cache, used when delete reloads the container's plugins for poststop.
    pub cache_dir: &'a Path,
    /// Called with init's pid once the container runs (the CLI forwards signals to it).
    pub on_start: &'a dyn Fn(i32),
    /// What the container record keeps besides the spec: labels, restart policy, stop signal.
    pub record: RecordOptions,
}

/// The `run`/`create` flags that shape the container record rather than config.json.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// `-l/--label KEY=VALUE` (a bare `KEY` has an empty value, as in Docker).
    pub labels: Vec<String>,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds.
    pub stop_timeout: Option<u32>,
    /// `-d`: a monitor will hold the container's stdio.
    pub detached: bool,
    /// `-i`: keep the container's stdin open (a monitor holds it for attached clients).
    pub open_stdin: bool,
    /// `--plugins` as given at create, made absolute (see [`ContainerRecord::plugins`]).
    pub plugins: Option<PathBuf>,
}

/// A Docker-style container's bundle, ready for its overlay to be mounted and the OCI
/// container created; its record is written with state `created`.
pub struct Prepared {
    /// The container id (64 hex digits).
    pub id: String,
    /// The bundle directory `<data-root>/containers/<id>`.
    pub dir: PathBuf,
    /// The image's unpacked layers, bottom first: the overlay's lower directories.
    pub layers: Vec<PathBuf>,
    guard: Bundle,
}

impl Prepared {
    /// Keep the bundle (and record) when this value is dropped; otherwise both are removed.
    pub fn keep(mut self) {
        self.guard.keep = true;
    }
}

/// Mount container `dir`'s rootfs (`dir/rootfs`) from the image's `layers` (bottom
/// first) through the storage driver its bundle records (see [`super::storage`]).
pub fn mount_rootfs(
    layers: &[PathBuf],
    dir: &Path,
    plugins: &PluginSet,
    cache_dir: &Path,
) -> Result<(), RunError> {
    let data_root = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/var/lib/rwasm"));
    Ok(super::storage::mount(&super::storage::MountCtx {
        data_root,
        bundle: dir,
        layers,
        plugins,
        cache_dir,
    })?)
}

/// A new 64-hex-digit container id (Docker's form) from the kernel's CSPRNG.
pub fn new_id() -> io::Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Check a container name against Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_name(name: &str) -> Result<(), RunError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RunError::BadName(name.into()))
    }
}

/// Removes the run's bundle (its rootfs released by its storage driver) when dropped,
/// unless kept (then the rootfs is only unmounted); then releases its volumes too
/// (unmounted, anonymous ones removed).
struct Bundle {
    dir: PathBuf,
    keep: bool,
    /// The container's id, data root and plugin cache, for the storage driver's release
    /// and [`super::volume_mounts::release`].
    id: String,
    data_root: PathBuf,
    cache_dir: PathBuf,
    /// The mounts of `-v`, `--tmpfs` and the image's volumes set up so far.
    mounts: Vec<super::record::MountRecord>,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if self.keep {
            if let Err(e) = super::storage::unmount(&self.dir) {
                tracing::warn!("{}", crate::error_chain(&e));
            }
        } else {
            super::storage::release(&self.dir, &self.cache_dir);
            let _ = fs::remove_dir_all(&self.dir);
            super::volume_mounts::release(
                &self.data_root,
                &self.cache_dir,
                &self.id,
                &self.mounts,
                true,
            );
        }
    }
}

/// Prepare a container from an image: its bundle (config.json, /etc/hostname and
/// /etc/hosts), its name reserved, its record saved as `created`. Nothing is mounted.
pub fn prepare(req: &RunRequest<'_>) -> Result<Prepared, RunError> {
    let images = ImageStore::new(req.data_root);
    let resolved = images.resolve(req.image)?;
    let mut flags = req.flags.clone();
    let config = resolved
        .image
        .as_ref()
        .and_then(|i| i.config.config().as_ref());
    let args = match super::image::defaults::apply(config, &req.args, &mut flags) {
        Some(args) => args,
        // A rootfs directory has no config: `sh`, as before images had configs.
        None if resolved.image.is_none()
            && resolved.layers.iter().any(|l| l.join("bin/sh").exists()) =>
        {
            vec!["sh".to_string()]
        }
        None => return Err(RunError::NoCommand(req.image.into())),
    };
    let driver = req
        .flags
        .storage_driver
        .clone()
        .unwrap_or_else(|| super::storage::DEFAULT_DRIVER.to_string());
    // Refused before anything exists: an option no driver here can honour.
    let storage_opts =
        super::storage::check_options(&driver, req.plugins, &req.flags.storage_opts)?;
    let id = new_id().map_err(io_err("read", Path::new("/dev/urandom")))?;
    let containers = req.data_root.join("containers");
    fs::create_dir_all(&containers).map_err(io_err("create", &containers))?;
    if let Some(n) = &req.name {
        check_name(n)?;
    }
    let dir = containers.join(&id);
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let mut bundle = Bundle {
        dir: dir.clone(),
        keep: false,
        id: id.clone(),
        data_root: req.data_root.to_path_buf(),
        cache_dir: req.cache_dir.to_path_buf(),
        mounts: Vec::new(),
    };
    fs::create_dir_all(&rootfs).map_err(io_err("create", &rootfs))?;
    // `--read-only` is the spec's `root.readonly` (the runtime remounts the root read-only
    // after making the mount destinations it needs, /etc/hostname among them), not a
    // read-only rootfs from the driver, which would refuse those destinations.
    super::storage::choose(&dir, &driver, req.plugins, false, &storage_opts)?;
    let name = req.name.clone().unwrap_or_else(|| id[..12].to_string());
    let records = Records::new(req.data_root);
    records.reserve_name(&name, &id)?;
    fs::write(dir.join("name"), &name).map_err(io_err("write", &dir.join("name")))?;
    let hostname = req
        .flags
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    fs::write(dir.join("hostname"), format!("{hostname}\n")).map_err(io_err("write", &dir))?;
    fs::write(
        dir.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
    )
    .map_err(io_err("write", &dir))?;
    // Docker: with `--read-only`, /etc/hostname, /etc/hosts and /etc/resolv.conf are
    // read-only too (their mounts are writable only when the root is); the runtime
    // rewrites them from the bundle side, never through these mounts.
    let net_file_opts = || {
        let mut o = vec!["rbind".to_string(), "rprivate".to_string()];
        if req.flags.host.read_only {
            o.push("ro".into());
        }
        o
    };
    let bind = |file: &str, dest: &str| -> Mount {
        oci_spec::runtime::MountBuilder::default()
            .destination(dest)
            .typ("bind")
            .source(dir.join(file))
            .options(net_file_opts())
            .build()
            .expect("static mount")
    };
    let mode = super::network::Mode::parse(
        req.flags
            .network
            .as_deref()
            .unwrap_or(super::network::DEFAULT_MODE),
    )?;
    let mut extra = vec![bind("hostname", "/etc/hostname")];
    // `container:NAME`: that container's network namespace, hosts and resolv.conf.
    let joined = match &mode {
        super::network::Mode::Container(name) => Some(running_init(&records, name, "--network")?),
        _ => None,
    };
    match &joined {
        Some((other, _)) => {
            let theirs = req.data_root.join("containers").join(other);
            let shared = |file: &str, dest: &str| -> Mount {
                oci_spec::runtime::MountBuilder::default()
                    .destination(dest)
                    .typ("bind")
                    .source(theirs.join(file))
                    .options(net_file_opts())
                    .build()
                    .expect("static mount")
            };
            extra.push(shared("hosts", "/etc/hosts"));
            if theirs.join("resolv.conf").is_file() {
                extra.push(shared("resolv.conf", "/etc/resolv.conf"));
            }
        }
        None => extra.push(bind("hosts", "/etc/hosts")),
    }
    if matches!(mode, super::network::Mode::Driver(_)) {
        // Filled in place once the driver has answered (see `network::setup`).
        let resolv = dir.join("resolv.conf");
        fs::write(&resolv, super::network::resolv_conf(None)).map_err(io_err("write", &resolv))?;
        extra.push(bind("resolv.conf", "/etc/resolv.conf"));
    }
    let publish = published_ports(req, &records, config)?;
    if !publish.is_empty() && !matches!(mode, super::network::Mode::Driver(_)) {
        return Err(super::network::NetworkError::BadMode {
            value: mode.as_str(),
            reason: "-p and -P need a network with a driver (bridge), not none, host or container:NAME",
        }
        .into());
    }
    let mut annotations = HashMap::from([
        (NAME_ANNOTATION.to_string(), name.clone()),
        (
            super::network::NETWORK_ANNOTATION.to_string(),
            mode.as_str(),
        ),
        (IMAGE_ANNOTATION.to_string(), req.image.to_string()),
        (ROOTFS_MOUNT_ANNOTATION.to_string(), driver.clone()),
    ]);
    if let Some(img) = &resolved.image {
        annotations.insert(
            IMAGE_MANIFEST_ANNOTATION.into(),
            img.manifest_digest.clone(),
        );
        annotations.insert(IMAGE_ID_ANNOTATION.into(), img.id.clone());
        if let Some(p) = super::image::defaults::exposed_ports(config) {
            annotations.insert(EXPOSED_PORTS_ANNOTATION.into(), p);
        }
    }
    if !publish.is_empty() {
        annotations.insert(
            super::network::PORTS_ANNOTATION.into(),
            serde_json::to_string(&publish).expect("ports serialize"),
        );
    }
    flags.hostname = Some(hostname);
    let group_names = flags
        .host
        .group_add
        .iter()
        .any(|g| g.parse::<u32>().is_err());
    if flags.user.is_some() || group_names {
        // Names resolve through the container's merged tree, mounted for the look-up
        // only (the bundle guard unmounts it if the look-up fails).
        mount_rootfs(&resolved.layers, &dir, req.plugins, req.cache_dir)?;
        if let Some(u) = &flags.user {
            let (uid, gid) = super::docker::resolve_user(u, &rootfs)?;
            flags.user = Some(format!("{uid}:{gid}"));
        }
        flags.host.group_add = super::docker::resolve_groups(&flags.host.group_add, &rootfs)?;
        super::storage::unmount(&dir)?;
    }
    resolve_namespaces(&records, &mut flags.host)?;
    let mut specs = Vec::new();
    for v in &req.flags.volumes {
        specs.push(super::volume_mounts::parse_volume(v)?);
    }
    for t in &req.flags.tmpfs {
        specs.push(super::volume_mounts::parse_tmpfs(t)?);
    }
    for m in &req.flags.mounts {
        specs.push(super::volume_mounts::parse_mount(m)?);
    }
    let image_volumes: Vec<String> = config.and_then(|c| c.volumes().clone()).unwrap_or_default();
    let mut new_volumes = Vec::new();
    extra.extend(super::volume_mounts::resolve(
        &super::volume::VolumeStore::new(req.data_root, req.cache_dir),
        req.plugins,
        &id,
        &specs,
        &image_volumes,
        &mut bundle.mounts,
        &mut new_volumes,
    )?);
    if !new_volumes.is_empty() {
        // Copy-up: new volumes start with the image's content at their path, read from
        // the merged tree mounted for that only (the bundle guard unmounts it on error).
        mount_rootfs(&resolved.layers, &dir, req.plugins, req.cache_dir)?;
        for (volume, dest) in &new_volumes {
            super::copy_up::seed(&rootfs, dest, volume)?;
        }
        super::storage::unmount(&dir)?;
    }
    let mut spec = docker_spec(
        &id,
        Path::new("rootfs"),
        args.clone(),
        &flags,
        extra,
        annotations,
    )?;
    if let (Some((_, pid)), Some(linux)) = (&joined, spec.linux_mut()) {
        let mut list = linux.namespaces().clone().unwrap_or_default();
        list.retain(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network);
        list.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(oci_spec::runtime::LinuxNamespaceType::Network)
                .path(PathBuf::from(format!("/proc/{pid}/ns/net")))
                .build()
                .expect("static namespace"),
        );
        linux.set_namespaces(Some(list));
    }
    let cfg = dir.join("config.json");
    fs::write(
        &cfg,
        serde_json::to_vec_pretty(&spec).expect("spec serializes"),
    )
    .map_err(io_err("write", &cfg))?;
    let o = &req.record;
    records.save(&ContainerRecord {
        restart: o.restart,
        auto_remove: req.rm,
        // `--stop-signal`, else the image's StopSignal (Docker's order), else SIGTERM.
        stop_signal: o
            .stop_signal
            .clone()
            .or_else(|| config.and_then(|c| c.stop_signal().clone())),
        stop_timeout: o.stop_timeout,
        labels: o
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect(),
        detached: o.detached,
        open_stdin: o.open_stdin,
        plugins: o.plugins.clone(),
        ports: publish.iter().map(super::ports::ps_form).collect(),
        mounts: bundle.mounts.clone(),
        ..ContainerRecord::created(
            id.clone(),
            name,
            req.image.to_string(),
            resolved.layers.clone(),
            args,
        )
    })?;
    Ok(Prepared {
        id,
        dir,
        layers: resolved.layers,
        guard: bundle,
    })
}

/// The container's published ports: `-p`, then with `-P` the image's ExposedPorts not
/// already published; host ports left out are chosen from the ephemeral range, avoiding
/// the ports other containers' records publish.
fn published_ports(
    req: &RunRequest<'_>,
    records: &Records,
    config: Option<&oci_spec::image::Config>,
) -> Result<Vec<crate::plugin::network::PortMapping>, RunError> {
    let mut publish = req.flags.publish.clone();
    if req.flags.publish_all
        && let Some(exposed) = super::image::defaults::exposed_ports(config)
    {
        let more = super::ports::publish_all(&exposed, &publish)
            .map_err(super::network::NetworkError::from)?;
        publish.extend(more);
    }
    if publish.iter().any(|p| p.host_port == 0) {
        let taken = records
            .all()?
            .iter()
            .filter(|r| r.live().is_running() || r.live() == super::record::Live::Created)
            .flat_map(|r| r.ports.iter())
            .filter_map(|p| super::ports::parse_ps_form(p).ok())
            .map(|p| (p.protocol, p.host_port))
            .collect();
        super::ports::allocate(&mut publish, &taken).map_err(super::network::NetworkError::from)?;
    }
    Ok(publish)
}

/// Turn `--pid/--ipc container:NAME` into the namespace files of that container's init;
/// the container must be running.
fn resolve_namespaces(
    records: &Records,
    h: &mut super::host_config::HostConfig,
) -> Result<(), RunError> {
    use super::host_config::NsMode;
    for (mode, kind, flag) in [(&mut h.pid, "pid", "--pid"), (&mut h.ipc, "ipc", "--ipc")] {
        let NsMode::Container(name) = mode else {
            continue;
        };
        let (_, pid) = running_init(records, name, flag)?;
        *mode = NsMode::Path(PathBuf::from(format!("/proc/{pid}/ns/{kind}")));
    }
    Ok(())
}

/// The id and init pid of the running container `name` that `flag`'s `container:NAME`
/// joins; a container that is not running is an error naming it.
fn running_init(
    records: &Records,
    name: &str,
    flag: &'static str,
) -> Result<(String, i32), RunError> {
    let id = records.resolve(name)?;
    let r = records.load(&id)?;
    match (r.live(), r.pid) {
        (super::record::Live::Running, Some(pid)) => Ok((id, pid)),
        _ => Err(RunError::Flag(FlagError::Invalid {
            flag,
            value: format!("container:{name}"),
            reason: format!("container {} is not running", r.name),
        })),
    }
}

/// Run a container from an image, attached; returns its exit code. Its record follows
/// it (`running` with this process as its monitor, then `exited`), and stays unless `rm`.
pub fn run_image(store: &StateStore, req: RunRequest<'_>) -> Result<i32, RunError> {
    req.plugins.prefetch(&container::RUN_POINTS);
    let Prepared {
        id,
        dir,
        layers,
        guard: mut bundle,
    } = prepare(&req)?;
    mount_rootfs(&layers, &dir, req.plugins, req.cache_dir)?;
    let records = Records::new(req.data_root);
    let created = container::create(
        store,
        &CreateOptions {
            id: &id,
            bundle: &dir,
            pid_file: None,
            preserve_fds: 0,
            plugins: req.plugins,
            console_socket: None,
            prefetch: &container::RUN_POINTS,
        },
    )
    .map_err(Box::new)?;
    let connected = super::network::setup(
        &id,
        &dir,
        created.record.pid.unwrap_or_default(),
        &created.record.annotations,
        req.plugins,
        req.cache_dir,
    );
    if let Err(e) = connected {
        let _ = container::delete(store, &id, true, req.cache_dir, Some(req.plugins));
        return Err(e.into());
    }
    (req.on_start)(created.record.pid.unwrap_or_default());
    let ooms = super::monitor::oom_kills(store, &id);
    let code = match container::start(store, &id, req.plugins) {
        Ok(record) => {
            let me = std::process::id().cast_signed();
            let _ = records.update(&id, |r| {
                r.state = RunState::Running;
                r.pid = record.pid;
                r.pid_start = record.pid_start;
                r.monitor_pid = Some(me);
                r.monitor_start = crate::linux::proc::start_time(me);
                r.started_at = Some(now_rfc3339());
            });
            let code = container::wait_exit(&record);
            let oom = super::monitor::oom_kills(store, &id) > ooms;
            let _ = records.update(&id, |r| r.oom_killed = oom);
            code
        }
        Err(e) => Err(e),
    };
    let deleted = container::delete(store, &id, true, req.cache_dir, Some(req.plugins));
    if let Ok(c) = &code {
        let _ = records.update(&id, |r| {
            r.state = RunState::Exited;
            r.exit_code = Some(*c);
            r.finished_at = Some(now_rfc3339());
        });
    }
    // With `--rm` the bundle guard also releases the volumes (anonymous ones removed).
    bundle.keep = !req.rm;
    let code = code.map_err(Box::new)?;
    deleted.map_err(Box::new)?;
    Ok(code)
}
