//! The plugin module's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::HookPoint;

/// The documented phases of a plugin (STYLE.md 8); every [`PluginError::Failed`] names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Reading, compiling (or loading the cached compilation of) and linking the component.
    Load,
    /// The guest's `configure` call, which validates its `[plugin.config]` table.
    Configure,
    /// Per call: granting directories, creating the store and instantiating the component.
    Prepare,
    /// The guest's `invoke` call for a hook point.
    Invoke,
}

impl Phase {
    /// The phase's name as logs and errors print it: `load`, `configure`, `prepare`, `invoke`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::Configure => "configure",
            Phase::Prepare => "prepare",
            Phase::Invoke => "invoke",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one plugin call failed: the `#[source]` of [`PluginError::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum FailureCause {
    /// The call ran past the manifest's `timeout-ms` (epoch interruption, or the host-side
    /// watchdog when the guest was blocked in a host call such as a sleep).
    #[error("exceeded its deadline of {timeout_ms} ms")]
    Deadline {
        /// The manifest's `timeout-ms`, in milliseconds.
        timeout_ms: u64,
    },
    /// Not called: an earlier call of this plugin in this process was abandoned at its
    /// deadline and is still blocked in a host call (a file operation), holding its
    /// instance. A plugin holds at most one pool slot that way, so a plugin that wedges
    /// cannot exhaust the instance pool the other plugins' calls need.
    #[error("not called: an earlier call of this plugin is still blocked past its deadline")]
    StillBlocked,
    /// The guest tried to grow a linear memory past the manifest's `memory-limit`.
    #[error("exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The manifest's `memory-limit`, in bytes.
        limit_bytes: u64,
    },
    /// The guest used up the manifest's `fuel` budget.
    #[error("ran out of fuel (budget {fuel} units)")]
    OutOfFuel {
        /// The manifest's `fuel`, in wasm fuel units.
        fuel: u64,
    },
    /// The guest trapped (a panic, an `unreachable`, a failed host call, ...).
    #[error("trapped: {message}{}", stderr_suffix(stderr_tail))]
    Trap {
        /// The trap code or the root cause reported by wasmtime.
        message: String,
        /// The last bytes the guest wrote to stderr (a Rust panic message lands here).
        stderr_tail: String,
    },
    /// The guest returned `err(message)` from `configure` or `invoke`.
    #[error("returned an error: {message}")]
    Guest {
        /// The guest's message, truncated to 64 KiB.
        message: String,
    },
    /// A file the host needed could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not a valid WebAssembly component, or compiling it failed.
    #[error("cannot compile {}: {reason}", path.display())]
    Compile {
        /// The `.wasm` file.
        path: PathBuf,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The component's imports or exports do not match the `hook` world of `rwasm:plugin`.
    #[error("cannot link against the hook world: {reason}")]
    Link {
        /// wasmtime's explanation.
        reason: String,
    },
    /// The component's imports or exports do not match the `network-driver` world.
    #[error("cannot link as a network driver: {reason}")]
    NetworkLink {
        /// What does not match, or wasmtime's explanation.
        reason: String,
    },
    /// The component's imports or exports do not match the `storage-driver` world.
    #[error("cannot link as a storage driver: {reason}")]
    StorageLink {
        /// What does not match, or wasmtime's explanation.
        reason: String,
    },
    /// The component's imports or exports do not match the `volume-driver` world.
    #[error("cannot link as a volume driver: {reason}")]
    VolumeLink {
        /// What does not match, or wasmtime's explanation.
        reason: String,
    },
    /// A volume driver answered a host path that is not a directory under its granted
    /// directories.
    #[error("the driver answered mountpoint `{}`, which is not a directory under its granted directories", path.display())]
    BadMountpoint {
        /// The path answered.
        path: PathBuf,
    },
    /// The wasmtime engine could not be created.
    #[error("cannot create the wasm engine: {reason}")]
    Engine {
        /// wasmtime's explanation.
        reason: String,
    },
    /// A directory of `[plugin.grants] dirs` could not be opened for the guest.
    #[error("cannot grant {} as {guest}: {reason}", host.display())]
    Grant {
        /// The host directory.
        host: PathBuf,
        /// The guest path it was to appear as.
        guest: String,
        /// Why not.
        reason: String,
    },
    /// The plugin's answer (the strings of its adjustment, or its deny reason) is larger
    /// than the manifest's `max-answer`.
    #[error("answered {bytes} bytes of strings, more than its max-answer of {limit} bytes")]
    AnswerTooLarge {
        /// Bytes of all strings in the answer.
        bytes: u64,
        /// The manifest's `max-answer`, in bytes.
        limit: u64,
    },
    /// The component imports an interface its grants do not allow (checked at load).
    #[error("imports `{import}`, which is not granted: {reason}")]
    ImportNotGranted {
        /// The import's full name, e.g. `wasi:sockets/tcp@0.2.6`.
        import: String,
        /// Why not, e.g. "plugins get no sockets" or "clock is not granted".
        reason: String,
    },
    /// The component was built for a version of `rwasm:plugin` this host does not run.
    #[error("{}", version_message(found, *newer))]
    UnsupportedVersion {
        /// The version the component was built for, e.g. `1.0.0`.
        found: String,
        /// The interface that names it, e.g. `rwasm:plugin/hooks@1.0.0`.
        interface: String,
        /// The version is of the same major line but newer than this host's.
        newer: bool,
    },
    /// The component exports another world's interface than its manifest `kind` needs.
    #[error(
        "listed as kind `{kind}`, but the component exports `{exports}` (world {world}), \
         not `{missing}`"
    )]
    WrongWorld {
        /// The manifest `kind`.
        kind: String,
        /// The `rwasm:plugin` interface the component exports.
        exports: String,
        /// The world that interface belongs to, e.g. `network-driver`.
        world: String,
        /// The interface the kind needs, e.g. `rwasm:plugin/hooks@0.3.0`.
        missing: String,
    },
    /// The thread that runs the call could not be started.
    #[error("cannot start the plugin call thread")]
    Thread {
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The versions of `rwasm:plugin` this host runs, as messages print them.
pub(crate) const HOSTED_VERSIONS: &str = "0.1.0, 0.2.0 and 0.3.0";

fn version_message(found: &str, newer: bool) -> String {
    if newer {
        format!(
            "built for rwasm:plugin {found}, which is newer than this rwasm (it hosts \
             {HOSTED_VERSIONS}): upgrade rwasm"
        )
    } else {
        format!(
            "built for rwasm:plugin {found}, this rwasm hosts {HOSTED_VERSIONS}: rebuild it \
             against rwasm:plugin@0.3.0"
        )
    }
}

fn stderr_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; guest stderr: {tail}")
    }
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("key `{key}`: ")
    }
}

/// Errors of the plugin module.
///
/// Following the Rust API guidelines, a variant's message does not repeat its
/// `#[source]`: print the whole chain (anyhow's `{:#}`) to see, e.g., that a call
/// "exceeded its deadline of 100 ms".
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The manifest could not be read.
    #[error("cannot read plugin manifest {}", path.display())]
    ManifestRead {
        /// The manifest file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The manifest is not valid; `line` is 1-based, `key` a dotted path such as
    /// `plugin[0].on-error` (empty for a syntax error that belongs to no key).
    #[error("invalid plugin manifest {}:{line}: {}{reason}", path.display(), key_prefix(key))]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The line of the offending key or value, 1-based.
        line: usize,
        /// The offending key, as a dotted path.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plugin refused the container: a decision, never skipped by `on-error = "ignore"`.
    #[error("plugin `{plugin}` denied the container at {point}: {reason}")]
    Denied {
        /// The plugin's manifest name.
        plugin: String,
        /// The hook point.
        point: HookPoint,
        /// The plugin's reason, truncated to 64 KiB.
        reason: String,
    },
    /// A plugin call failed (load, configure, prepare or invoke phase).
    #[error("plugin `{plugin}` failed at {point} in its {phase} phase")]
    Failed {
        /// The plugin's manifest name.
        plugin: String,
        /// The hook point being served.
        point: HookPoint,
        /// The phase that failed.
        phase: Phase,
        /// What went wrong.
        #[source]
        cause: FailureCause,
    },
    /// A plugin returned an adjustment the host refuses to apply.
    #[error("plugin `{plugin}` returned an invalid adjustment: {field}: {reason}")]
    InvalidAdjustment {
        /// The plugin's manifest name.
        plugin: String,
        /// The offending entry, e.g. `env[3]` or `mounts[0].source`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two plugins claimed the same field of the spec at pre-create.
    #[error("plugins `{first}` and `{second}` both set {field}")]
    Conflict {
        /// The claimed field, e.g. `process.env FOO` or `annotations["k"]`.
        field: String,
        /// The plugin that claimed it first (manifest order).
        first: String,
        /// The plugin that claimed it again.
        second: String,
    },
    /// A plugin does not load (`rwasm plugin validate`, `precompile`, `inspect`): it
    /// cannot be read or compiled, is built for another version or world, imports what it
    /// is not granted, or does not link.
    #[error("plugin `{plugin}` does not load")]
    Unloadable {
        /// The plugin's manifest name (or the file inspected).
        plugin: String,
        /// What is wrong.
        #[source]
        cause: FailureCause,
    },
    /// No plugin of that name is in the manifest.
    #[error("no plugin named `{name}` in the manifest")]
    UnknownPlugin {
        /// The name asked for.
        name: String,
    },
    /// `--network NAME` names no network: no `network-driver` plugin of that name.
    #[error("no network driver named `{name}`{}: list a `network-driver` plugin of that name in the manifest", manifest.as_ref().map(|m| format!(" in {}", m.display())).unwrap_or_default())]
    NoNetworkDriver {
        /// The network asked for.
        name: String,
        /// The manifest searched, if any.
        manifest: Option<PathBuf>,
    },
    /// A network driver call failed (load, configure, prepare or invoke phase).
    #[error("network driver `{plugin}` failed to {op} in its {phase} phase")]
    NetworkFailed {
        /// The plugin's manifest name.
        plugin: String,
        /// `setup`, `teardown` or `check`.
        op: &'static str,
        /// The phase that failed.
        phase: Phase,
        /// What went wrong.
        #[source]
        cause: FailureCause,
    },
    /// `--storage-driver NAME` names no driver: no `storage-driver` plugin of that name.
    #[error("no storage driver named `{name}`{}: use overlay or vfs, or list a `storage-driver` plugin of that name in the manifest", manifest.as_ref().map(|m| format!(" in {}", m.display())).unwrap_or_default())]
    NoStorageDriver {
        /// The driver asked for.
        name: String,
        /// The manifest searched, if any.
        manifest: Option<PathBuf>,
    },
    /// `-d NAME` names no volume driver: no `volume-driver` plugin of that name.
    #[error("no volume driver named `{name}`{}: list a `volume-driver` plugin of that name in the manifest", manifest.as_ref().map(|m| format!(" in {}", m.display())).unwrap_or_default())]
    NoVolumeDriver {
        /// The driver asked for.
        name: String,
        /// The manifest searched, if any.
        manifest: Option<PathBuf>,
    },
    /// A storage driver call failed (load, configure, prepare or invoke phase).
    #[error("storage driver `{plugin}` failed to {op} in its {phase} phase")]
    StorageFailed {
        /// The plugin's manifest name.
        plugin: String,
        /// `prepare`, `release` or `usage`.
        op: &'static str,
        /// The phase that failed.
        phase: Phase,
        /// What went wrong.
        #[source]
        cause: FailureCause,
    },
    /// A volume driver call failed (load, configure, prepare or invoke phase).
    #[error("volume driver `{plugin}` failed to {op} volume `{volume}` in its {phase} phase")]
    VolumeFailed {
        /// The plugin's manifest name.
        plugin: String,
        /// `create`, `remove`, `mount`, `unmount`, `path`, `get`, `list` or `capabilities`.
        op: &'static str,
        /// The volume's name (empty for `list` and `capabilities`).
        volume: String,
        /// The phase that failed.
        phase: Phase,
        /// What went wrong.
        #[source]
        cause: FailureCause,
    },
    /// The spec could not be encoded as JSON for the plugins.
    #[error("cannot encode the container spec as JSON for plugins")]
    EncodeSpec {
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl PluginError {
    /// The plugin this error is attributed to, if any (for a conflict: the second one).
    pub fn plugin(&self) -> Option<&str> {
        match self {
            PluginError::Denied { plugin, .. }
            | PluginError::Failed { plugin, .. }
            | PluginError::InvalidAdjustment { plugin, .. }
            | PluginError::Unloadable { plugin, .. }
            | PluginError::NetworkFailed { plugin, .. }
            | PluginError::StorageFailed { plugin, .. }
            | PluginError::VolumeFailed { plugin, .. } => Some(plugin),
            PluginError::Conflict { second, .. } => Some(second),
            PluginError::ManifestRead { .. }
            | PluginError::Manifest { .. }
            | PluginError::UnknownPlugin { .. }
            | PluginError::NoNetworkDriver { .. }
            | PluginError::NoStorageDriver { .. }
            | PluginError::NoVolumeDriver { .. }
            | PluginError::EncodeSpec { .. } => None,
        }
    }
}
