//! The plugin manifest (`plugins.toml`): parsing and the configure-phase checks that need
//! no wasm.
//!
//! ```toml
//! version = 1                     # optional; only 1 is understood
//! [[plugin]]
//! name = "audit"                  # unique, [a-z0-9-]
//! path = "audit.wasm"             # relative to the manifest's directory
//! kind = "hook"                   # hook | network-driver
//! hooks = ["pre-create", "poststop"]   # hook plugins only
//! on-error = "fail"               # fail (default) | ignore
//! timeout-ms = 200                # default 1000, 1..=60000
//! memory-limit = "64MiB"          # default 64MiB, at least 1MiB, at most 4GiB
//! fuel = 100000000                # optional
//! max-answer = "1MiB"             # default 1MiB: bytes of strings one answer may hold
//! [plugin.config]                 # flat: string, integer, float, bool, array of strings
//! log-dir = "/log"
//! [plugin.grants]
//! dirs = { "/var/log/rwasm-audit" = "/log:rw" }   # guest path, ":ro" (default) or ":rw"
//! env = ["HTTP_PROXY"]            # rwasm's own variables passed through, when set
//! rootfs = "ro"                   # the container's rootfs at /rootfs: "ro" | "rw"
//! clock = true                    # wasi:clocks (default true)
//! random = true                   # wasi:random (default true)
//! ```
//!
//! Keys of adjustments, ordering and selection (issue 3):
//!
//! ```toml
//! cdi-spec-dirs = ["/etc/cdi", "/var/run/cdi"]   # top level; the default; absolute paths
//! [[plugin]]
//! order = -10                     # lower runs first at each hook point; default 0, then position
//! [plugin.match]                  # absent: every container
//! annotations = { "team" = "gpu", "tier" = "*" }  # all must match; "*" is any value
//! images = ["busybox", "docker.io/library/nginx:*"]  # any may match; `*` and `?` globs
//! [plugin.grants]
//! args = true                     # may replace process.args (default false)
//! loosen-resources = true         # may raise resources and rlimits (default false)
//! hooks = true                    # may add OCI exec hooks, run as root (default false)
//! devices = true                  # may add device nodes and their cgroup rules (default false)
//! ```
//!
//! A network driver (issue 6) has no `hooks`: `rwasm run --network NAME` calls the
//! `network-driver` plugin named NAME. What it may ask the host to do:
//!
//! ```toml
//! [[plugin]]
//! name = "bridge"
//! kind = "network-driver"
//! [plugin.grants]
//! dirs = { "/var/lib/rwasm/net/bridge" = "/state:rw" }   # its IPAM leases
//! [plugin.grants.network]
//! bridges = ["rwasm0"]            # bridges it may create, reuse, address and attach to
//! subnets = ["10.88.0.0/16"]      # IPv4 networks its addresses, routes and NAT must lie in
//! link-prefix = "rwv"             # host links it creates and owns start with this (1-8 chars)
//! nat = true                      # masquerade and port forwards (default false)
//! exec-dir = "/usr/lib/cni"       # host binaries it may run (`exec-binary`; the cni driver)
//! ```
//! Nothing else is granted: no sockets, no host processes, no network. The component's
//! imports are checked against these grants at load (see `host::grants`).
//!
//! Serde rejects unknown keys and wrong types; everything else is checked after parsing
//! with the values' spans, so that every error names its key and its line.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{HookPoint, OnError, PluginError};

/// Default `timeout-ms`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// Largest `timeout-ms`, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Default `memory-limit`, in bytes (64 MiB).
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;
/// Smallest `memory-limit`, in bytes (1 MiB).
pub const MIN_MEMORY_LIMIT: u64 = 1 << 20;
/// Largest `memory-limit`, in bytes (4 GiB, the most a 32-bit linear memory can address).
pub const MAX_MEMORY_LIMIT: u64 = 4 << 30;
/// Default `max-answer`, in bytes (1 MiB).
pub const DEFAULT_MAX_ANSWER: u64 = 1 << 20;
/// Largest `max-answer`, in bytes (1 GiB).
pub const MAX_MAX_ANSWER: u64 = 1 << 30;
/// The guest path of the `rootfs` grant.
pub const ROOTFS_GUEST_PATH: &str = "/rootfs";

const MAX_NAME_LEN: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawManifest {
    version: Option<Spanned<i64>>,
    cdi_spec_dirs: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    plugin: Vec<Spanned<RawPlugin>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlugin {
    name: Spanned<String>,
    path: Spanned<String>,
    kind: Spanned<String>,
    hooks: Option<Spanned<Vec<Spanned<String>>>>,
    on_error: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<i64>>,
    memory_limit: Option<Spanned<toml::Value>>,
    fuel: Option<Spanned<i64>>,
    max_answer: Option<Spanned<toml::Value>>,
    config: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    grants: Option<RawGrants>,
    order: Option<Spanned<i64>>,
    #[serde(rename = "match")]
    selector: Option<RawMatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGrants {
    #[serde(default)]
    dirs: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    args: bool,
    #[serde(default)]
    loosen_resources: bool,
    #[serde(default)]
    hooks: bool,
    #[serde(default)]
    devices: bool,
    // Sandbox grants: environment pass-through, the rootfs, clocks and randomness.
    #[serde(default)]
    env: Vec<Spanned<String>>,
    rootfs: Option<Spanned<String>>,
    clock: Option<bool>,
    random: Option<bool>,
    network: Option<Spanned<RawNetworkGrant>>,
    storage: Option<Spanned<RawStorageGrant>>,
}

/// `[plugin.grants.storage]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStorageGrant {
    state_dir: Spanned<String>,
}

/// `[plugin.grants.network]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNetworkGrant {
    #[serde(default)]
    bridges: Vec<Spanned<String>>,
    #[serde(default)]
    subnets: Vec<Spanned<String>>,
    link_prefix: Option<Spanned<String>>,
    #[serde(default)]
    nat: bool,
    exec_dir: Option<Spanned<String>>,
}

/// `[plugin.match]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMatch {
    #[serde(default)]
    annotations: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    images: Vec<Spanned<String>>,
}

/// The default of the top-level `cdi-spec-dirs` (CDI SPEC.md, "CDI spec directories").
pub const DEFAULT_CDI_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// A validated manifest.
#[derive(Debug)]
pub(crate) struct Manifest {
    pub(crate) plugins: Vec<PluginSpec>,
    /// Top-level `cdi-spec-dirs`, in priority order (later directories win, as in CDI).
    pub(crate) cdi_spec_dirs: Vec<PathBuf>,
}

/// What a plugin is: its manifest `kind`, the world its component must export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PluginKind {
    /// World `hook`: called at its `hooks`.
    Hook,
    /// World `network-driver`: called by `rwasm run --network NAME`.
    NetworkDriver,
    /// World `storage-driver`: called by `rwasm run --storage-driver NAME`.
    StorageDriver,
    /// World `volume-driver`: called by `rwasm volume create -d NAME` and for the
    /// volumes of `rwasm run -v`.
    VolumeDriver,
}

impl PluginKind {
    /// The manifest's spelling: `hook`, `network-driver`, `storage-driver`, `volume-driver`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PluginKind::Hook => "hook",
            PluginKind::NetworkDriver => "network-driver",
            PluginKind::StorageDriver => "storage-driver",
            PluginKind::VolumeDriver => "volume-driver",
        }
    }
}

/// `[plugin.grants.network]`: what a network driver may ask of the host (the plugin
/// host checks every `net-host` call against it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NetworkGrant {
    /// Bridges it may create or reuse, address, bring up and attach links to.
    pub(crate) bridges: Vec<String>,
    /// IPv4 networks (address, prefix length) its addresses, routes and NAT must lie in.
    pub(crate) subnets: Vec<(std::net::Ipv4Addr, u8)>,
    /// Host links it creates (veth host ends) start with this; it owns those only.
    pub(crate) link_prefix: Option<String>,
    /// It may masquerade and forward ports.
    pub(crate) nat: bool,
    /// `exec-dir`: the directory of host binaries it may run (`exec-binary`), absolute.
    pub(crate) exec_dir: Option<PathBuf>,
}

/// One validated `[[plugin]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct PluginSpec {
    pub(crate) name: String,
    /// `kind`.
    pub(crate) kind: PluginKind,
    /// Absolute path of the `.wasm` component.
    pub(crate) path: PathBuf,
    pub(crate) hooks: Vec<HookPoint>,
    pub(crate) on_error: OnError,
    pub(crate) timeout_ms: u64,
    /// Bytes.
    pub(crate) memory_limit: u64,
    pub(crate) fuel: Option<u64>,
    /// `[plugin.config]`, sorted by key.
    pub(crate) config: Vec<(String, ConfigValue)>,
    /// `[plugin.grants] dirs`, sorted by host path.
    pub(crate) dirs: Vec<DirGrant>,
    /// `order`: lower runs first at a hook point (ties keep manifest position).
    pub(crate) order: i64,
    /// `[plugin.match]`: the containers this plugin applies to.
    pub(crate) selector: Selector,
    /// `[plugin.grants] args`: may replace `process.args`.
    pub(crate) grant_args: bool,
    /// `[plugin.grants] loosen-resources`: may raise resources and rlimits.
    pub(crate) loosen_resources: bool,
    /// `[plugin.grants] hooks`: may add OCI exec hooks (host processes run as root).
    pub(crate) grant_hooks: bool,
    /// `[plugin.grants] devices`: may add device nodes (any major:minor, host disks too).
    pub(crate) grant_devices: bool,
    /// `[plugin.grants]` env, rootfs, clock and random.
    pub(crate) sandbox: SandboxGrants,
    /// `max-answer`: bytes of strings one answer (adjustment or deny reason) may hold.
    pub(crate) max_answer: u64,
    /// `[plugin.grants.network]`, network drivers only.
    pub(crate) network: Option<NetworkGrant>,
    /// `[plugin.grants.storage] state-dir`, storage drivers only: the directory the
    /// driver owns (preopened read-write at its host path; every mount target lies in it).
    pub(crate) storage_dir: Option<PathBuf>,
}

/// `[plugin.match]`: an empty selector matches every container.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Selector {
    /// (key, value) pairs that must all be present; value `*` matches any value.
    pub(crate) annotations: Vec<(String, String)>,
    /// Globs (`*`, `?`) on the image name; one must match when the list is non-empty.
    pub(crate) images: Vec<String>,
}

impl PluginSpec {
    /// Whether the plugin is granted any part of the host's filesystem (`dirs` or
    /// `rootfs`), through which a call can block in a file operation that the epoch
    /// cannot interrupt. Such plugins are called on a watched worker thread.
    pub(crate) fn has_fs_grants(&self) -> bool {
        !self.dirs.is_empty() || self.sandbox.rootfs.is_some()
    }
}

/// The grants of `[plugin.grants]` besides `dirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SandboxGrants {
    /// Names of rwasm's own environment variables passed through (when set), in
    /// manifest order.
    pub(crate) env: Vec<String>,
    /// The container's rootfs, preopened at [`ROOTFS_GUEST_PATH`]; `None`: not granted.
    pub(crate) rootfs: Option<Access>,
    /// `wasi:clocks/*` may be imported.
    pub(crate) clock: bool,
    /// `wasi:random/*` may be imported.
    pub(crate) random: bool,
}

impl Default for SandboxGrants {
    fn default() -> SandboxGrants {
        SandboxGrants {
            env: Vec::new(),
            rootfs: None,
            clock: true,
            random: true,
        }
    }
}

/// Read-only or read-write access to a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

/// A `[plugin.config]` value, as the WIT `config-value` variant carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Texts(Vec<String>),
}

/// A host directory preopened for the guest.
#[derive(Debug, Clone)]
pub(crate) struct DirGrant {
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
    pub(crate) writable: bool,
}

/// Collects what an error needs: the manifest path and its text, for lines.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> PluginError {
        PluginError::Manifest {
            path: self.path.to_path_buf(),
            line: self.line(span.start),
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Turns a serde/syntax error into a manifest error naming the key if one can be found.
    fn toml_error(&self, err: &toml::de::Error) -> PluginError {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim_end().to_string();
        let key = key_in_message(&message).unwrap_or_else(|| self.key_on_line(span.start));
        let table = self.table_at(span.start);
        let key = match (table.is_empty(), key.is_empty()) {
            (true, _) => key,
            (false, true) => table,
            (false, false) => format!("{table}.{key}"),
        };
        self.err(span, key, message)
    }

    /// The dotted path of the table that holds `offset`: `plugin[1]`, `plugin[1].grants`,
    /// or empty at the top level.
    fn table_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let mut plugins = 0usize;
        let mut table = String::new();
        for line in self.text[..line_end].lines() {
            let line = line.trim();
            if line.starts_with("[[") {
                let name = line.trim_matches(|c| c == '[' || c == ']').trim();
                if name == "plugin" {
                    plugins += 1;
                    table = format!("plugin[{}]", plugins - 1);
                } else {
                    table = name.to_string();
                }
            } else if line.starts_with('[') {
                let name = line.trim_matches(|c| c == '[' || c == ']').trim();
                table = match name.strip_prefix("plugin.") {
                    Some(rest) if plugins > 0 => format!("plugin[{}].{rest}", plugins - 1),
                    _ => name.to_string(),
                };
            }
        }
        table
    }

    /// The key of the `key = value` line at `offset` (empty on a table header).
    fn key_on_line(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text[start..end].trim();
        match line.split_once('=') {
            Some((key, _)) if !line.starts_with('[') => key.trim().trim_matches('"').to_string(),
            _ => String::new(),
        }
    }
}

/// serde's messages name fields in backticks: "unknown field `colour`", "missing field `name`".
fn key_in_message(message: &str) -> Option<String> {
    let rest = message.split_once("field `")?.1;
    let (key, _) = rest.split_once('`')?;
    Some(key.to_string())
}

/// Parses and validates manifest text; `path` is used for errors and to resolve plugin paths.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Manifest, PluginError> {
    let ctx = Ctx { path, text };
    let raw: RawManifest = toml::from_str(text).map_err(|e| ctx.toml_error(&e))?;
    if let Some(version) = &raw.version
        && *version.get_ref() != 1
    {
        return Err(ctx.err(
            version.span(),
            "version",
            format!(
                "unsupported manifest version {} (this rwasm reads version 1)",
                version.get_ref()
            ),
        ));
    }
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut plugins = Vec::with_capacity(raw.plugin.len());
    for (index, entry) in raw.plugin.into_iter().enumerate() {
        let name_span = entry.get_ref().name.span();
        let spec = plugin(&ctx, &dir, index, entry.into_inner())?;
        if let Some(first) = names.get(&spec.name) {
            return Err(ctx.err(
                name_span,
                format!("plugin[{index}].name"),
                format!(
                    "duplicate plugin name `{}` (already used by plugin[{first}])",
                    spec.name
                ),
            ));
        }
        names.insert(spec.name.clone(), index);
        plugins.push(spec);
    }
    let cdi_spec_dirs = match &raw.cdi_spec_dirs {
        None => DEFAULT_CDI_SPEC_DIRS.iter().map(PathBuf::from).collect(),
        Some(list) => {
            let mut dirs = Vec::new();
            for (i, d) in list.get_ref().iter().enumerate() {
                let p = PathBuf::from(d.get_ref());
                if !clean_absolute(&p) {
                    return Err(ctx.err(
                        d.span(),
                        format!("cdi-spec-dirs[{i}]"),
                        format!(
                            "`{}` is not an absolute path without `.` and `..`",
                            d.get_ref()
                        ),
                    ));
                }
                dirs.push(p);
            }
            dirs
        }
    };
    Ok(Manifest {
        plugins,
        cdi_spec_dirs,
    })
}

fn selector(ctx: &Ctx<'_>, index: usize, raw: Option<RawMatch>) -> Result<Selector, PluginError> {
    let Some(raw) = raw else {
        return Ok(Selector::default());
    };
    let mut annotations = Vec::new();
    for (k, v) in raw.annotations {
        if k.get_ref().is_empty() {
            return Err(ctx.err(
                k.span(),
                format!("plugin[{index}].match.annotations"),
                "annotation keys must not be empty",
            ));
        }
        annotations.push((k.into_inner(), v.into_inner()));
    }
    let mut images = Vec::new();
    for (i, g) in raw.images.into_iter().enumerate() {
        if g.get_ref().is_empty() {
            return Err(ctx.err(
                g.span(),
                format!("plugin[{index}].match.images[{i}]"),
                "an image pattern must not be empty",
            ));
        }
        images.push(g.into_inner());
    }
    Ok(Selector {
        annotations,
        images,
    })
}

fn plugin(
    ctx: &Ctx<'_>,
    dir: &Path,
    index: usize,
    raw: RawPlugin,
) -> Result<PluginSpec, PluginError> {
    let key = |k: &str| format!("plugin[{index}].{k}");

    let name = raw.name.get_ref();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ctx.err(
            raw.name.span(),
            key("name"),
            format!(
                "invalid plugin name `{name}`: use 1 to {MAX_NAME_LEN} characters of a-z, 0-9 and -"
            ),
        ));
    }

    let rel = raw.path.get_ref();
    if rel.is_empty() || rel.contains('\0') {
        return Err(ctx.err(
            raw.path.span(),
            key("path"),
            "the path must be a non-empty file path",
        ));
    }
    let path = dir.join(rel);

    let kind = match raw.kind.get_ref().as_str() {
        "hook" => PluginKind::Hook,
        "network-driver" => PluginKind::NetworkDriver,
        "storage-driver" => PluginKind::StorageDriver,
        "volume-driver" => PluginKind::VolumeDriver,
        k => {
            return Err(ctx.err(
                raw.kind.span(),
                key("kind"),
                format!(
                    "unknown plugin kind `{k}`, expected `hook`, `network-driver`, \
                     `storage-driver` or `volume-driver`"
                ),
            ));
        }
    };

    let no_hooks = Spanned::new(0..0, Vec::new());
    let raw_hooks = match (&raw.hooks, kind) {
        (Some(h), PluginKind::NetworkDriver) => {
            return Err(ctx.err(
                h.span(),
                key("hooks"),
                "a network driver has no hook points: `rwasm run --network NAME` calls the \
                 network-driver plugin named NAME",
            ));
        }
        (None, PluginKind::NetworkDriver) => &no_hooks,
        (Some(h), PluginKind::StorageDriver) => {
            return Err(ctx.err(
                h.span(),
                key("hooks"),
                "a storage driver has no hook points: `rwasm run --storage-driver NAME` calls \
                 the storage-driver plugin named NAME",
            ));
        }
        (None, PluginKind::StorageDriver) => &no_hooks,
        (Some(h), PluginKind::VolumeDriver) => {
            return Err(ctx.err(
                h.span(),
                key("hooks"),
                "a volume driver has no hook points: `rwasm volume create -d NAME` and the \
                 volumes of `rwasm run -v` call the volume-driver plugin named NAME",
            ));
        }
        (None, PluginKind::VolumeDriver) => &no_hooks,
        (None, PluginKind::Hook) => {
            return Err(ctx.err(
                raw.name.span(),
                key("hooks"),
                "missing field `hooks`: a hook plugin lists the hook points it is called at",
            ));
        }
        (Some(h), PluginKind::Hook) => {
            if h.get_ref().is_empty() {
                return Err(ctx.err(h.span(), key("hooks"), "list at least one hook point"));
            }
            h
        }
    };
    let mut hooks = Vec::new();
    for (i, hook) in raw_hooks.get_ref().iter().enumerate() {
        let point: HookPoint = hook.get_ref().parse().map_err(|_| {
            ctx.err(
                hook.span(),
                format!("plugin[{index}].hooks[{i}]"),
                format!(
                    "unknown hook point `{}`, expected one of: {}",
                    hook.get_ref(),
                    HookPoint::ALL.map(|p| p.as_str()).join(", ")
                ),
            )
        })?;
        if hooks.contains(&point) {
            return Err(ctx.err(
                hook.span(),
                format!("plugin[{index}].hooks[{i}]"),
                format!("hook point `{point}` is listed twice"),
            ));
        }
        hooks.push(point);
    }

    let on_error = match &raw.on_error {
        None => OnError::Fail,
        Some(v) => match v.get_ref().as_str() {
            "fail" => OnError::Fail,
            "ignore" => OnError::Ignore,
            other => {
                return Err(ctx.err(
                    v.span(),
                    key("on-error"),
                    format!("unknown value `{other}`, expected `fail` or `ignore`"),
                ));
            }
        },
    };

    let timeout_ms = match &raw.timeout_ms {
        None => DEFAULT_TIMEOUT_MS,
        Some(v) => match u64::try_from(*v.get_ref()) {
            Ok(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => ms,
            _ => {
                return Err(ctx.err(
                    v.span(),
                    key("timeout-ms"),
                    format!(
                        "{} is out of range: use 1 to {MAX_TIMEOUT_MS} milliseconds",
                        v.get_ref()
                    ),
                ));
            }
        },
    };

    let memory_limit = match &raw.memory_limit {
        None => DEFAULT_MEMORY_LIMIT,
        Some(v) => {
            let bytes = size_value(v.get_ref())
                .map_err(|reason| ctx.err(v.span(), key("memory-limit"), reason))?;
            if !(MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&bytes) {
                return Err(ctx.err(
                    v.span(),
                    key("memory-limit"),
                    format!("{bytes} bytes is out of range: use 1MiB to 4GiB"),
                ));
            }
            bytes
        }
    };

    let fuel = match &raw.fuel {
        None => None,
        Some(v) => match u64::try_from(*v.get_ref()) {
            Ok(f) if f > 0 => Some(f),
            _ => {
                return Err(ctx.err(
                    v.span(),
                    key("fuel"),
                    format!("{} is not a positive fuel budget", v.get_ref()),
                ));
            }
        },
    };

    let mut config = Vec::new();
    for (k, v) in raw.config.unwrap_or_default() {
        let name = format!("plugin[{index}].config.{}", k.get_ref());
        if k.get_ref().is_empty() {
            return Err(ctx.err(k.span(), name, "config keys must not be empty"));
        }
        let value = config_value(v.get_ref()).map_err(|reason| ctx.err(v.span(), name, reason))?;
        config.push((k.into_inner(), value));
    }

    let order = raw.order.as_ref().map_or(0, |o| *o.get_ref());
    let selector = selector(ctx, index, raw.selector)?;
    let (grant_args, loosen_resources, grant_hooks, grant_devices) = raw
        .grants
        .as_ref()
        .map_or((false, false, false, false), |g| {
            (g.args, g.loosen_resources, g.hooks, g.devices)
        });

    let max_answer = match &raw.max_answer {
        None => DEFAULT_MAX_ANSWER,
        Some(v) => {
            let bytes = size_value(v.get_ref())
                .map_err(|reason| ctx.err(v.span(), key("max-answer"), reason))?;
            if !(1..=MAX_MAX_ANSWER).contains(&bytes) {
                return Err(ctx.err(
                    v.span(),
                    key("max-answer"),
                    format!("{bytes} bytes is out of range: use 1 byte to 1GiB"),
                ));
            }
            bytes
        }
    };

    let mut raw_grants = raw.grants.unwrap_or(RawGrants {
        dirs: BTreeMap::new(),
        args: false,
        loosen_resources: false,
        hooks: false,
        devices: false,
        env: Vec::new(),
        rootfs: None,
        clock: None,
        random: None,
        network: None,
        storage: None,
    });
    let network = match (raw_grants.network.take(), kind) {
        (Some(g), PluginKind::Hook | PluginKind::VolumeDriver) => {
            return Err(ctx.err(
                g.span(),
                format!("plugin[{index}].grants.network"),
                "only a `network-driver` plugin may be granted network operations",
            ));
        }
        (Some(g), PluginKind::NetworkDriver) => Some(network_grant(ctx, index, g.into_inner())?),
        (None, PluginKind::NetworkDriver) => Some(NetworkGrant::default()),
        (Some(g), PluginKind::StorageDriver) => {
            return Err(ctx.err(
                g.span(),
                format!("plugin[{index}].grants.network"),
                "only a `network-driver` plugin may be granted network operations",
            ));
        }
        (None, PluginKind::Hook | PluginKind::StorageDriver | PluginKind::VolumeDriver) => None,
    };
    let storage_dir = match (raw_grants.storage.take(), kind) {
        (Some(g), PluginKind::StorageDriver) => {
            let dir = g.into_inner().state_dir;
            let path = PathBuf::from(dir.get_ref());
            if !clean_absolute(&path) || path == Path::new("/") {
                return Err(ctx.err(
                    dir.span(),
                    format!("plugin[{index}].grants.storage.state-dir"),
                    "the state directory must be an absolute path without `..`, not `/`",
                ));
            }
            Some(path)
        }
        (None, PluginKind::StorageDriver) => {
            return Err(ctx.err(
                raw.name.span(),
                format!("plugin[{index}].grants.storage.state-dir"),
                "a storage driver needs `[plugin.grants.storage] state-dir`, the directory \
                 it owns",
            ));
        }
        (Some(g), _) => {
            return Err(ctx.err(
                g.span(),
                format!("plugin[{index}].grants.storage"),
                "only a `storage-driver` plugin may be granted a storage directory",
            ));
        }
        (None, _) => None,
    };
    let sandbox = sandbox_grants(ctx, index, &mut raw_grants)?;
    let mut dirs = Vec::new();
    let mut guests = BTreeSet::new();
    if sandbox.rootfs.is_some() {
        guests.insert(ROOTFS_GUEST_PATH.to_string());
    }
    for (host, guest) in raw_grants.dirs {
        let name = format!("plugin[{index}].grants.dirs.\"{}\"", host.get_ref());
        let host_path = PathBuf::from(host.get_ref());
        if !clean_absolute(&host_path) {
            return Err(ctx.err(
                host.span(),
                name,
                "the host directory must be an absolute path without `..`",
            ));
        }
        let (guest_path, writable) = match guest.get_ref().rsplit_once(':') {
            None => (guest.get_ref().as_str(), false),
            Some((g, "ro")) => (g, false),
            Some((g, "rw")) => (g, true),
            Some((_, mode)) => {
                return Err(ctx.err(
                    guest.span(),
                    name,
                    format!("unknown access mode `{mode}`, expected `:ro` or `:rw`"),
                ));
            }
        };
        if !clean_absolute(Path::new(guest_path)) {
            return Err(ctx.err(
                guest.span(),
                name,
                "the guest path must be an absolute path without `..`",
            ));
        }
        if !guests.insert(guest_path.to_string()) {
            let reason = if guest_path == ROOTFS_GUEST_PATH && sandbox.rootfs.is_some() {
                format!("guest path `{guest_path}` is where the `rootfs` grant appears")
            } else {
                format!("guest path `{guest_path}` is granted twice")
            };
            return Err(ctx.err(guest.span(), name, reason));
        }
        dirs.push(DirGrant {
            host: host_path,
            guest: guest_path.to_string(),
            writable,
        });
    }

    Ok(PluginSpec {
        name: raw.name.into_inner(),
        kind,
        path,
        hooks,
        on_error,
        timeout_ms,
        memory_limit,
        fuel,
        config,
        dirs,
        order,
        selector,
        grant_args,
        loosen_resources,
        grant_hooks,
        grant_devices,
        sandbox,
        max_answer,
        network,
        storage_dir,
    })
}

/// Longest `link-prefix`: it leaves 7 of an interface name's 15 characters for the driver.
const MAX_LINK_PREFIX: usize = 8;

/// Validates `[plugin.grants.network]`.
fn network_grant(
    ctx: &Ctx<'_>,
    index: usize,
    raw: RawNetworkGrant,
) -> Result<NetworkGrant, PluginError> {
    let key = |k: &str| format!("plugin[{index}].grants.network.{k}");
    let mut bridges = Vec::new();
    for (i, b) in raw.bridges.iter().enumerate() {
        if let Err(e) = crate::linux::net::netlink::check_ifname(b.get_ref()) {
            return Err(ctx.err(b.span(), key(&format!("bridges[{i}]")), e.to_string()));
        }
        bridges.push(b.get_ref().clone());
    }
    let mut subnets = Vec::new();
    for (i, n) in raw.subnets.iter().enumerate() {
        let net = parse_subnet(n.get_ref())
            .map_err(|reason| ctx.err(n.span(), key(&format!("subnets[{i}]")), reason))?;
        subnets.push(net);
    }
    let link_prefix = match &raw.link_prefix {
        None => None,
        Some(p) => {
            let v = p.get_ref();
            let ok = !v.is_empty()
                && v.len() <= MAX_LINK_PREFIX
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(ctx.err(
                    p.span(),
                    key("link-prefix"),
                    format!(
                        "invalid link prefix `{v}`: use 1 to {MAX_LINK_PREFIX} characters of \
                         a-z, A-Z, 0-9, - and _"
                    ),
                ));
            }
            if bridges.iter().any(|b| b.starts_with(v.as_str())) {
                return Err(ctx.err(
                    p.span(),
                    key("link-prefix"),
                    format!("a granted bridge starts with the link prefix `{v}`; pick another"),
                ));
            }
            Some(v.clone())
        }
    };
    let exec_dir = match &raw.exec_dir {
        None => None,
        Some(d) => {
            let p = PathBuf::from(d.get_ref());
            if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
                return Err(ctx.err(
                    d.span(),
                    key("exec-dir"),
                    format!(
                        "invalid exec-dir `{}`: use an absolute path without `..`",
                        d.get_ref()
                    ),
                ));
            }
            Some(p)
        }
    };
    Ok(NetworkGrant {
        bridges,
        subnets,
        link_prefix,
        nat: raw.nat,
        exec_dir,
    })
}

/// Parses `a.b.c.d/len` with no host bits set.
pub(crate) fn parse_subnet(text: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let bad = || format!("invalid subnet `{text}`: use an IPv4 network such as 10.88.0.0/16");
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if u32::from(addr) & !mask != 0 {
        return Err(format!(
            "invalid subnet `{text}`: host bits are set (the network is {}/{len})",
            std::net::Ipv4Addr::from(u32::from(addr) & mask)
        ));
    }
    Ok((addr, len))
}

/// `[plugin.grants]` env, rootfs, clock and random (taken out of `raw`).
fn sandbox_grants(
    ctx: &Ctx<'_>,
    index: usize,
    raw: &mut RawGrants,
) -> Result<SandboxGrants, PluginError> {
    let mut env = Vec::new();
    for (i, name) in std::mem::take(&mut raw.env).into_iter().enumerate() {
        let key = format!("plugin[{index}].grants.env[{i}]");
        let n = name.get_ref();
        if n.is_empty() || n.contains(['=', '\0']) {
            return Err(ctx.err(
                name.span(),
                key,
                format!("invalid variable name {n:?}: it must be non-empty, without `=` or NUL"),
            ));
        }
        if env.contains(n) {
            return Err(ctx.err(name.span(), key, format!("variable `{n}` is listed twice")));
        }
        env.push(name.into_inner());
    }
    let rootfs = match raw.rootfs.take() {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            "ro" => Some(Access::ReadOnly),
            "rw" => Some(Access::ReadWrite),
            other => {
                return Err(ctx.err(
                    v.span(),
                    format!("plugin[{index}].grants.rootfs"),
                    format!("unknown access `{other}`, expected \"ro\" or \"rw\""),
                ));
            }
        },
    };
    Ok(SandboxGrants {
        env,
        rootfs,
        clock: raw.clock.unwrap_or(true),
        random: raw.random.unwrap_or(true),
    })
}

/// A size given as a string ("64MiB") or a number of bytes.
fn size_value(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::String(s) => parse_size(s),
        toml::Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("negative size {i}")),
        other => Err(format!(
            "expected a size string, found {}",
            article(other.type_str())
        )),
    }
}

fn config_value(v: &toml::Value) -> Result<ConfigValue, String> {
    Ok(match v {
        toml::Value::String(s) => ConfigValue::Text(s.clone()),
        toml::Value::Integer(i) => ConfigValue::Integer(*i),
        toml::Value::Float(f) => ConfigValue::Float(*f),
        toml::Value::Boolean(b) => ConfigValue::Boolean(*b),
        toml::Value::Array(items) => ConfigValue::Texts(
            items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "arrays may hold only strings, found {}",
                        article(other.type_str())
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(_) => {
            return Err(
                "nested tables are not allowed in [plugin.config]: use flat keys".to_string(),
            );
        }
        toml::Value::Datetime(_) => {
            return Err("datetimes are not supported in [plugin.config]: use a string".to_string());
        }
    })
}

fn article(word: &str) -> String {
    let an = word.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {word}", if an { "an" } else { "a" })
}

/// `true` for an absolute path with no `.` or `..` components.
pub(crate) fn clean_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// The canonical spelling of a path that [`clean_absolute`] accepts: one `/` between
/// components, none at the end (`/data//x/` is `/data/x`), so that one path has one name
/// in claims and comparisons.
pub(crate) fn normal_absolute(path: &Path) -> String {
    path.components().collect::<PathBuf>().display().to_string()
}

/// Parses "64MiB", "512KiB", "1GiB" or a plain number of bytes ("1048576").
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => {
            return Err(format!(
                "invalid size `{text}`: use a number of bytes or KiB, MiB, GiB, as in \"64MiB\""
            ));
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("invalid size `{text}`: use a number of bytes or KiB, MiB, GiB, as in \"64MiB\"")
    })?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("64MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn clean_paths() {
        assert!(clean_absolute(Path::new("/var/log")));
        assert!(!clean_absolute(Path::new("var/log")));
        assert!(!clean_absolute(Path::new("/var/../etc")));
    }
}
