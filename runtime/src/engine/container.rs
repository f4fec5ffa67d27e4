//! The OCI lifecycle operations (runtime-spec `runtime.md`, "Operations"): create, start,
//! state, kill, delete, and run (= create + start + wait + delete).

use std::fs::File;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{ContainerState, Spec};

use crate::linux::cgroup::{CgroupError, CgroupManager, Manager};
use crate::linux::exe::{ExeError, sealed_self_exe};
use crate::linux::launch::{Launch, LaunchError, spawn_init};
use crate::linux::namespaces::{NamespaceError, NamespacePlan, write_id_maps};
use crate::linux::proc::start_time;
use crate::linux::sync::{self, FailureKind, FromInit, InitConfig, Pause, SyncError, ToInit};
use crate::plugin::{HookPoint, PluginError, PluginSet};

use super::hooks::{OciHook, PointError, run_point, run_point_logged, state_json};
use super::state::{
    OCI_VERSION, Record, StateError, StateStore, check_id, now_rfc3339, write_atomic,
};

/// A lifecycle operation that failed. Nothing of a failed create is left behind.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading or writing the container's state record failed (bad id, exists, not found, I/O).
    #[error(transparent)]
    State(#[from] StateError),
    /// The bundle violates runtime-spec `config.md` or rwasm's limits (no `process.args`,
    /// relative `process.cwd`, missing `root.path`, `process.terminal` without a console socket).
    #[error("{path}: {reason}")]
    Bundle {
        /// The bundle's `config.json` (or the bundle directory when it cannot be resolved).
        path: PathBuf,
        /// Which field is wrong and why, e.g. `process.cwd: must be an absolute path`.
        reason: String,
    },
    /// A `config.json` (the bundle's, or the copy in the state directory) does not parse.
    #[error("cannot load {path}")]
    Config {
        /// The `config.json` that failed to load.
        path: PathBuf,
        /// The parse or I/O error from oci-spec.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// A plugin failed outside a lifecycle hook point (e.g. at `preCreate`).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The spec's `linux.namespaces` or id mappings cannot be honoured.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// Creating, configuring or tearing down the container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Sealing a copy of our own executable for init (runc CVE-2019-5736 defence) failed.
    #[error(transparent)]
    Exe(#[from] ExeError),
    /// Cloning the container's init process failed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The sync socket to init broke, or carried a bad or oversized message.
    #[error("talking to the container's init")]
    Sync(#[from] SyncError),
    /// Binding (at create) or connecting to (at start) the container's `start.sock` failed.
    #[error("start socket {path}")]
    Socket {
        /// The `start.sock` in the container's state directory.
        path: PathBuf,
        /// The bind or connect error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to the console socket (`--console-socket`) failed.
    #[error("console socket {path}")]
    ConsoleSocket {
        /// The socket given by the caller.
        path: PathBuf,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// Init reported a failure, exited early, or broke the protocol; the kind maps to
    /// Docker's exit codes 127 (not found) and 126 (cannot execute).
    #[error("{0}")]
    Init(String, FailureKind),
    /// A lifecycle hook point (OCI hooks and plugin hooks) failed; at `startContainer` the
    /// container is killed, as runtime-spec `config.md` "POSIX-platform Hooks" requires.
    #[error("{point} failed")]
    Point {
        /// The runtime-spec hook name, e.g. `createRuntime`, `startContainer`.
        point: &'static str,
        /// What failed at that point.
        #[source]
        source: PointError,
    },
    /// The operation is not allowed in the container's current status (runtime-spec
    /// `runtime.md`, "Operations": start needs created, kill created or running, delete stopped).
    #[error("container {id} is {status}: {what}")]
    WrongState {
        /// The container id.
        id: String,
        /// The status the container is in.
        status: ContainerState,
        /// What is allowed instead, as a hint for the user.
        what: &'static str,
    },
    /// `kill(2)` on one of the container's processes failed with other than `ESRCH`.
    #[error("cannot signal container {id}")]
    Signal {
        /// The container id.
        id: String,
        /// The errno from `kill(2)`.
        #[source]
        source: nix::Error,
    },
    /// An update would leave the container's resources inconsistent (e.g. a memory limit
    /// above the memory+swap limit it keeps).
    #[error("{field}: {reason}")]
    InvalidUpdate {
        /// The `linux.resources` field, e.g. `linux.resources.memory.limit`.
        field: &'static str,
        /// Why, with the values.
        reason: String,
    },
    /// The container's state records no cgroup (a create that died before choosing one).
    #[error("container {id} has no recorded cgroup")]
    NoCgroup {
        /// The container id.
        id: String,
    },
    /// `waitpid(2)` on the container's init failed with other than `EINTR`.
    #[error("waiting for container {id}")]
    Wait {
        /// The container id.
        id: String,
        /// The errno from `waitpid(2)`.
        #[source]
        source: nix::Error,
    },
}

impl EngineError {
    /// What init reported about the user process (Docker's 126/127), if anything.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            EngineError::Init(_, k) => Some(*k),
            _ => None,
        }
    }
}

/// Inputs of `create`.
pub struct CreateOptions<'a> {
    /// The container id; must pass [`check_id`] (runc's rule) and be unused in the store.
    pub id: &'a str,
    /// The bundle directory (runtime-spec `bundle.md`).
    pub bundle: &'a Path,
    /// Where to write init's pid (runc's `--pid-file`).
    pub pid_file: Option<&'a Path>,
    /// fds 3..3+N passed through to the user process.
    pub preserve_fds: u32,
    /// The loaded plugins whose hooks run at each lifecycle point; may be empty.
    pub plugins: &'a PluginSet,
    /// Where the terminal of a container with `process.terminal: true` goes (see
    /// `linux::console`); `None` refuses such a container.
    pub console_socket: Option<ConsoleSocket<'a>>,
    /// The hook points whose plugins start loading in the background once init has been
    /// cloned, has joined its cgroup and has its configuration: [`CREATE_POINTS`] for a
    /// create alone, [`RUN_POINTS`] when this process goes on to start, wait and delete.
    /// Then the other CPU is idle while init sets the container up, and the load no
    /// longer shares the clone's address space and its RCU grace periods, which slowed
    /// a `run` by ~1.5 ms when it started earlier (bench/RESULTS.md). When some plugin
    /// runs at pre-create, which is called before anything is cloned, the load starts at
    /// create's start instead, beside the bundle's checks (that call joins it).
    pub prefetch: &'a [HookPoint],
}

/// Where a container's terminal master is sent.
#[derive(Debug, Clone, Copy)]
pub enum ConsoleSocket<'a> {
    /// runc's `--console-socket PATH`: connected at create; a container without
    /// `process.terminal` is refused, as runc does.
    Path(&'a Path),
    /// A socket the caller holds the other end of (a foreground run that proxies the
    /// terminal itself); used only if the process has a terminal.
    IfTerminal(&'a std::os::fd::OwnedFd),
}

/// A created container.
#[derive(Debug)]
pub struct Created {
    /// Its state record as saved in the store, status `created`, with init's pid.
    pub record: Record,
    /// The process has a terminal (`process.terminal`): its master was sent to the
    /// console socket.
    pub terminal: bool,
}

/// The console socket of a container with `process.terminal: true`, connected (runc's
/// rule: a terminal needs `--console-socket`, and `--console-socket` needs a terminal).
fn console_socket(
    bundle: &Path,
    spec: &Spec,
    socket: Option<ConsoleSocket<'_>>,
) -> Result<Option<std::os::fd::OwnedFd>, EngineError> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let bad = |reason: &str| EngineError::Bundle {
        path: bundle.join("config.json"),
        reason: reason.into(),
    };
    match (terminal, socket) {
        (false, None | Some(ConsoleSocket::IfTerminal(_))) => Ok(None),
        (true, Some(ConsoleSocket::IfTerminal(fd))) => {
            fd.try_clone()
                .map(Some)
                .map_err(|source| EngineError::ConsoleSocket {
                    path: PathBuf::from("(the caller's terminal socket)"),
                    source,
                })
        }
        (true, None) => Err(bad(
            "process.terminal: true needs a console socket (--console-socket) to send the \
             terminal to",
        )),
        (false, Some(_)) => Err(bad(
            "process.terminal: --console-socket is given but the process has no terminal",
        )),
        (true, Some(ConsoleSocket::Path(path))) => UnixStream::connect(path)
            .map(|s| Some(std::os::fd::OwnedFd::from(s)))
            .map_err(|source| EngineError::ConsoleSocket {
                path: path.to_path_buf(),
                source,
            }),
    }
}

/// Load and check `config.json` of a bundle; returns (bundle, rootfs, spec).
pub fn load_bundle(bundle: &Path) -> Result<(PathBuf, PathBuf, Spec), EngineError> {
    let bundle = bundle.canonicalize().map_err(|e| EngineError::Bundle {
        path: bundle.to_path_buf(),
        reason: format!("bundle directory: {e}"),
    })?;
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|source| {
        // serde names neither the field nor its place: say which seccomp field is wrong.
        let why = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| crate::linux::seccomp::explain_json(&v));
        match why {
            Some(reason) => EngineError::Bundle {
                path: path.clone(),
                reason,
            },
            None => EngineError::Config {
                path: path.clone(),
                source,
            },
        }
    })?;
    let bad = |reason: &str| EngineError::Bundle {
        path: path.clone(),
        reason: reason.into(),
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| bad("process: missing (required for create)"))?;
    if process.args().as_deref().unwrap_or_default().is_empty() {
        return Err(bad("process.args: must name the program to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(bad("process.cwd: must be an absolute path"));
    }
    let root = spec.root().as_ref().ok_or_else(|| bad("root: missing"))?;
    let rootfs = bundle.join(root.path());
    let rootfs = rootfs.canonicalize().map_err(|e| EngineError::Bundle {
        path: path.clone(),
        reason: format!("root.path {}: {e}", rootfs.display()),
    })?;
    if !rootfs.is_dir() {
        return Err(bad("root.path: not a directory"));
    }
    super::validate::check_spec(&spec).map_err(|reason| EngineError::Bundle {
        path: path.clone(),
        reason,
    })?;
    Ok((bundle, rootfs, spec))
}

/// `linux.resources` as applied at create: a spec without a device list still gets a
/// deny-all device cgroup (the cgroup manager then allows the default devices), as runc
/// does, so CAP_MKNOD cannot reach host block devices.
fn confined_resources(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    let mut res = linux.resources().clone().unwrap_or_default();
    if res.devices().is_none() {
        let deny_all = oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .expect("static rule");
        res.set_devices(Some(vec![deny_all]));
    }
    res
}

/// Undoes a partial create when dropped without `commit` (nothing is left behind).
struct Rollback<'a> {
    store: &'a StateStore,
    id: String,
    cgroup: Option<Manager>,
    pid: Option<Pid>,
    armed: bool,
}

impl Rollback<'_> {
    fn commit(mut self) {
        self.armed = false;
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.destroy()
        {
            tracing::warn!(container = %self.id, "rollback: {}", crate::error_chain(&e));
        }
        if let Err(e) = self.store.remove(&self.id) {
            tracing::warn!(container = %self.id, "rollback: {}", crate::error_chain(&e));
        }
    }
}

/// The hook points `create` calls plugins at.
pub const CREATE_POINTS: [HookPoint; 3] = [
    HookPoint::PreCreate,
    HookPoint::CreateRuntime,
    HookPoint::CreateContainer,
];
/// The hook points `start` calls plugins at.
pub const START_POINTS: [HookPoint; 2] = [HookPoint::StartContainer, HookPoint::Poststart];
/// The hook points `delete` calls plugins at.
pub const DELETE_POINTS: [HookPoint; 2] = [HookPoint::Poststop, HookPoint::PostDelete];
/// Every hook point a whole `run` (create, start, wait, delete) calls plugins at.
pub const RUN_POINTS: [HookPoint; 7] = [
    HookPoint::PreCreate,
    HookPoint::CreateRuntime,
    HookPoint::CreateContainer,
    HookPoint::StartContainer,
    HookPoint::Poststart,
    HookPoint::Poststop,
    HookPoint::PostDelete,
];

/// Create a container (runtime-spec "create"): namespaces, cgroup, rootfs and hooks up
/// to `created`; the user process waits for `start`.
pub fn create(store: &StateStore, opts: &CreateOptions<'_>) -> Result<Created, EngineError> {
    let _span = tracing::info_span!("create", container = %opts.id).entered();
    if opts.plugins.wants(HookPoint::PreCreate) {
        opts.plugins.prefetch(opts.prefetch);
    }
    check_id(opts.id)?;
    if store.exists(opts.id) {
        return Err(StateError::Exists(opts.id.into()).into());
    }
    let (bundle, rootfs, mut spec) = load_bundle(opts.bundle)?;
    let console = console_socket(&bundle, &spec, opts.console_socket)?;
    let console_given = console.is_some();

    let mut record = Record {
        oci_version: OCI_VERSION.into(),
        id: opts.id.into(),
        status: ContainerState::Creating,
        pid: None,
        pid_start: None,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        created: now_rfc3339(),
        owner: "root".into(),
        cgroup: None,
        plugins: opts.plugins.manifest_path().map(Path::to_path_buf),
        started: false,
    };
    // pre-create: the plugins may still change the spec; nothing exists yet.
    if opts.plugins.wants(HookPoint::PreCreate) {
        let applied = opts
            .plugins
            .pre_create(&record.oci_state(ContainerState::Creating), &mut spec)?;
        for a in &applied {
            tracing::info!(container = %opts.id, "{a}");
        }
        record.annotations = spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        // The adjusted spec must still be one rwasm can run.
        super::validate::check_spec(&spec).map_err(|reason| EngineError::Bundle {
            path: bundle.join("config.json"),
            reason: format!("{reason} (after the pre-create plugins' adjustments)"),
        })?;
    }
    // Everything below — namespaces, cgroups path and resources, devices, rlimits, args,
    // hooks, the saved config.json — follows the spec as the plugins adjusted it.
    let linux = spec.linux().clone().unwrap_or_default();
    let plan = NamespacePlan::from_spec(linux.namespaces().as_deref().unwrap_or_default())?;
    let pid_ns = plan
        .pid_path
        .as_ref()
        .map(|p| {
            File::open(p).map_err(|source| NamespaceError::Open {
                kind: "pid",
                path: p.clone(),
                source,
            })
        })
        .transpose()?;

    let cg = Manager::for_container(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        opts.id,
    )?;
    record.cgroup = Some(cg.handle());
    let dir = store.claim(opts.id)?;
    let mut rb = Rollback {
        store,
        id: opts.id.into(),
        cgroup: None,
        pid: None,
        armed: true,
    };
    write_atomic(
        &dir.join("config.json"),
        &serde_json::to_vec(&spec).expect("spec serializes"),
    )?;
    // Recorded before anything exists, so that `delete --force` can clean up after a
    // create that was killed half-way.
    store.save(&record)?;
    rb.cgroup = Some(cg.clone());
    cg.create()?;

    let exe = sealed_self_exe(store.root())?;
    let (mut sync_sock, init_sock) = UnixStream::pair().map_err(SyncError::Io)?;
    let sock_path = dir.join("start.sock");
    let listener =
        with_short_path(&dir, "start.sock", |p| UnixListener::bind(p)).map_err(|source| {
            EngineError::Socket {
                path: sock_path.clone(),
                source,
            }
        })?;
    let init_fd = std::os::fd::OwnedFd::from(init_sock);
    let listen_fd = std::os::fd::OwnedFd::from(listener);
    let pid = spawn_init(&Launch {
        exe: &exe,
        flags: plan.clone_flags,
        pid_ns: pid_ns.as_ref(),
        sync: &init_fd,
        start: &listen_fd,
        new_userns: plan.new_user(),
        console: console.as_ref(),
    })?;
    rb.pid = Some(pid);
    drop((init_fd, listen_fd, exe, console));
    record.pid = Some(pid.as_raw());
    record.pid_start = start_time(pid.as_raw());
    store.save(&record)?;

    let cg = rb.cgroup.as_ref().expect("set above");
    cg.add_task(pid.as_raw())?;
    cg.apply(&confined_resources(&linux))?;
    if plan.new_user() {
        write_id_maps(
            pid.as_raw(),
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )?;
        std::io::Write::write_all(&mut sync_sock, &[crate::linux::launch::MAPS_WRITTEN])
            .map_err(SyncError::Io)?;
    }
    let cfg = InitConfig {
        spec: spec.clone(),
        rootfs,
        bundle,
        state: state_json(&record, ContainerState::Creating),
        new_cgroup_ns: plan.new_cgroup,
        loopback_up: plan.new_net(),
        preserve_fds: opts.preserve_fds,
    };
    sync::send(&mut sync_sock, &ToInit::Config(Box::new(cfg)))?;
    // Init now sets the container up on its own until createRuntime (see `prefetch`);
    // a no-op if pre-create started the load.
    opts.plugins.prefetch(opts.prefetch);

    loop {
        let msg = match sync::recv::<FromInit>(&mut sync_sock) {
            Ok(m) => m,
            Err(SyncError::Closed | SyncError::Io(_)) => return Err(init_death(pid, &linux)),
            Err(e) => return Err(e.into()),
        };
        let step = match msg {
            FromInit::Paused(Pause::CreateRuntime) => run_point(
                opts.plugins,
                &spec,
                &record,
                ContainerState::Creating,
                &[OciHook::Prestart, OciHook::CreateRuntime],
                HookPoint::CreateRuntime,
            )
            .map_err(|source| EngineError::Point {
                point: "createRuntime",
                source,
            }),
            FromInit::Paused(Pause::CreateContainer) => run_point(
                opts.plugins,
                &spec,
                &record,
                ContainerState::Creating,
                &[],
                HookPoint::CreateContainer,
            )
            .map_err(|source| EngineError::Point {
                point: "createContainer",
                source,
            }),
            FromInit::Created => break,
            FromInit::Failed { kind, message } => return Err(EngineError::Init(message, kind)),
            FromInit::Exec => {
                return Err(EngineError::Init(
                    "init sent exec during create".into(),
                    FailureKind::Other,
                ));
            }
        };
        match step {
            Ok(()) => sync::send(&mut sync_sock, &ToInit::Continue)?,
            Err(e) => {
                let _ = sync::send(&mut sync_sock, &ToInit::Abort(crate::error_chain(&e)));
                return Err(e);
            }
        }
    }
    record.status = ContainerState::Created;
    store.save(&record)?;
    if let Some(p) = opts.pid_file {
        write_atomic(p, pid.as_raw().to_string().as_bytes())?;
    }
    rb.commit();
    Ok(Created {
        record,
        terminal: console_given,
    })
}

/// Call `f` with a path naming `dir/name` that fits a unix socket address (108 bytes,
/// unix(7)) however long `dir` is: `/proc/self/fd/N/name` through an fd on `dir`.
fn with_short_path<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let d = File::open(dir)?;
    let p = PathBuf::from(format!(
        "/proc/self/fd/{}/{name}",
        std::os::fd::AsRawFd::as_raw_fd(&d)
    ));
    f(&p)
}

/// Why init went away during create, from its wait status (it is our child).
fn init_death(pid: Pid, linux: &oci_spec::runtime::Linux) -> EngineError {
    let how = match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
        Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) => {
            let limit = linux
                .resources()
                .as_ref()
                .and_then(|r| r.memory().as_ref())
                .and_then(|m| m.limit());
            match limit {
                Some(l) => format!(
                    "was killed by SIGKILL (out of memory? linux.resources.memory.limit is {l} bytes)"
                ),
                None => "was killed by SIGKILL".into(),
            }
        }
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
        Ok(other) => format!("stopped ({other:?})"),
        Err(e) => format!("went away ({e})"),
    };
    EngineError::Init(
        format!("container init {how} during create (check process.rlimits and linux.resources)"),
        FailureKind::Other,
    )
}

/// The plugins a container was created with (an empty set when it had none).
pub fn plugins_of(record: &Record, cache_dir: &Path) -> Result<PluginSet, EngineError> {
    match &record.plugins {
        Some(m) => Ok(PluginSet::load(m, cache_dir)?),
        None => Ok(PluginSet::empty()),
    }
}

fn load_spec(store: &StateStore, id: &str) -> Result<Spec, EngineError> {
    let path = store.dir(id).join("config.json");
    Spec::load(&path).map_err(|source| EngineError::Config { path, source })
}

/// Start a created container (runtime-spec "start").
pub fn start(store: &StateStore, id: &str, plugins: &PluginSet) -> Result<Record, EngineError> {
    let _span = tracing::info_span!("start", container = %id).entered();
    plugins.prefetch(&START_POINTS);
    let mut record = store.load(id)?;
    let status = record.status();
    if status != ContainerState::Created {
        return Err(EngineError::WrongState {
            id: id.into(),
            status,
            what: "only a created container can be started",
        });
    }
    let spec = load_spec(store, id)?;
    let stop = |record: &Record| {
        if let Some(pid) = record.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    };
    if let Err(source) = run_point(
        plugins,
        &spec,
        &record,
        ContainerState::Created,
        &[],
        HookPoint::StartContainer,
    ) {
        // Spec: a failing startContainer hook stops the container.
        stop(&record);
        return Err(EngineError::Point {
            point: "startContainer",
            source,
        });
    }
    let sock_path = store.dir(id).join("start.sock");
    let mut conn = with_short_path(&store.dir(id), "start.sock", |p| UnixStream::connect(p))
        .map_err(|source| EngineError::Socket {
            path: sock_path.clone(),
            source,
        })?;
    sync::send(
        &mut conn,
        &ToInit::Start {
            state: state_json(&record, ContainerState::Created),
        },
    )?;
    let mut exec_sent = false;
    loop {
        match sync::recv::<FromInit>(&mut conn) {
            Ok(FromInit::Exec) => exec_sent = true,
            Ok(FromInit::Failed { kind, message }) => {
                stop(&record);
                return Err(EngineError::Init(message, kind));
            }
            Ok(other) => {
                stop(&record);
                return Err(EngineError::Init(
                    format!("unexpected message from init: {other:?}"),
                    FailureKind::Other,
                ));
            }
            Err(SyncError::Closed) if exec_sent => break,
            Err(SyncError::Closed) => {
                return Err(EngineError::Init(
                    "container init exited before exec".into(),
                    FailureKind::Other,
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let _ = std::fs::remove_file(&sock_path);
    record.started = true;
    record.status = ContainerState::Running;
    store.save(&record)?;
    run_point_logged(
        plugins,
        &spec,
        &record,
        ContainerState::Running,
        Some(OciHook::Poststart),
        HookPoint::Poststart,
    );
    Ok(record)
}

/// Send `signal` to the container's init, or with `all` to every process in its cgroup.
pub fn kill_container(
    store: &StateStore,
    id: &str,
    signal: i32,
    all: bool,
) -> Result<(), EngineError> {
    let record = store.load(id)?;
    let status = record.status();
    if !matches!(status, ContainerState::Created | ContainerState::Running) {
        return Err(EngineError::WrongState {
            id: id.into(),
            status,
            what: "only a created or running container can be signalled",
        });
    }
    let mut pids = vec![record.pid.unwrap_or_default()];
    if all && let Some(h) = &record.cgroup {
        pids = Manager::from_handle(h).pids()?;
    }
    for pid in pids {
        match crate::linux::signal::send(pid, signal) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(source) => {
                return Err(EngineError::Signal {
                    id: id.into(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Delete a container (runtime-spec "delete"): a container that is not stopped is an
/// error unless `force`, which kills it first. After the container's state is removed, and
/// before delete returns, the poststop hooks run (OCI exec hooks, then the `poststop`
/// plugins: runtime-spec `config.md`, "Poststop"), then the `post-delete` plugins; their
/// failures are logged, not returned.
///
/// `loaded` is the container's plugin set when the caller already has it (`run`);
/// otherwise the manifest recorded at create is loaded from `cache_dir`.
pub fn delete(
    store: &StateStore,
    id: &str,
    force: bool,
    cache_dir: &Path,
    loaded: Option<&PluginSet>,
) -> Result<(), EngineError> {
    let _span = tracing::info_span!("delete", container = %id).entered();
    let record = match store.load(id) {
        Ok(r) => r,
        Err(StateError::NotFound(_)) if force && !store.dir(id).exists() => return Ok(()),
        Err(StateError::NotFound(_) | StateError::Corrupt { .. })
            if force && store.dir(id).exists() =>
        {
            // A create that died before writing state: just remove what it left.
            store.remove(id)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = record.status();
    if status != ContainerState::Stopped && !force {
        return Err(EngineError::WrongState {
            id: id.into(),
            status,
            what: "delete it with --force, or stop it first",
        });
    }
    // Loaded now, so that the poststop and post-delete plugins load in the background
    // while the container is torn down.
    let owned;
    let plugins = match loaded {
        Some(p) => Ok(p),
        None => {
            owned = plugins_of(&record, cache_dir);
            owned.as_ref()
        }
    };
    if let Ok(p) = plugins {
        p.prefetch(&DELETE_POINTS);
    }
    if status != ContainerState::Stopped
        && let Some(pid) = record.pid
    {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        wait_dead(&record, Duration::from_secs(5));
    }
    if let Some(h) = &record.cgroup {
        Manager::from_handle(h).destroy()?;
    }
    // A Docker-style container's network (its driver's teardown, then its rules and links).
    super::network::teardown(
        id,
        &record.bundle,
        cache_dir,
        plugins.as_ref().ok().copied(),
    );
    if record
        .annotations
        .contains_key(super::run::ROOTFS_MOUNT_ANNOTATION)
    {
        // A Docker-style container's rootfs, also when its `run` was killed (the storage
        // driver's data stays until the container is removed).
        super::storage::unmount(&record.bundle).map_err(|e| EngineError::Bundle {
            path: record.rootfs.clone(),
            reason: crate::error_chain(&e),
        })?;
        // Its volumes' drivers unmount them at every stop, as Docker calls
        // `/VolumeDriver.Unmount` (a start mounts them again; `rm` removes anonymous ones).
        if let Some(data_root) = record.bundle.parent().and_then(Path::parent)
            && let Ok(r) = super::record::Records::new(data_root).load(id)
        {
            super::volume_mounts::release(data_root, cache_dir, id, &r.mounts, false);
        }
    }
    let spec = load_spec(store, id).ok();
    store.remove(id)?;
    if let Some(spec) = spec {
        // The OCI poststop hooks run even when the plugins cannot be loaded.
        let none = PluginSet::empty();
        let plugins = plugins.unwrap_or_else(|e| {
            tracing::warn!(container = %id, "poststop and post-delete plugins: {}", crate::error_chain(e));
            &none
        });
        run_point_logged(
            plugins,
            &spec,
            &record,
            ContainerState::Stopped,
            Some(OciHook::Poststop),
            HookPoint::Poststop,
        );
        run_point_logged(
            plugins,
            &spec,
            &record,
            ContainerState::Stopped,
            None,
            HookPoint::PostDelete,
        );
    }
    Ok(())
}

fn wait_dead(record: &Record, limit: Duration) {
    let t = Instant::now();
    while record.status() != ContainerState::Stopped && t.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wait for a container whose init is our child; returns the exit code the way a shell
/// reports it: N for exit(N), 128+S for a death by signal S.
pub fn wait_exit(record: &Record) -> Result<i32, EngineError> {
    let pid = Pid::from_raw(record.pid.unwrap_or_default());
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(source) => {
                return Err(EngineError::Wait {
                    id: record.id.clone(),
                    source,
                });
            }
        }
    }
}
