//! The WebAssembly plugin host: the manifest, the wasmtime host of the `hook` world of
//! `rwasm:plugin@0.1.0` (`sdk/wit/plugin.wit`) and the merge of plugins' spec adjustments.
//!
//! A [`PluginSet`] is loaded from a TOML manifest (see [`manifest`] for the schema) without
//! touching any wasm. The first time a hook point is invoked, the plugins registered for it
//! are loaded: their compiled form comes from the compile cache or is compiled and cached.
//! Every call then runs in a fresh, sandboxed instance, bounded by the plugin's deadline
//! (`timeout-ms`), memory cap (`memory-limit`) and optional fuel.
//!
//! Plugins have four phases, and every [`PluginError::Failed`] names the one that failed:
//! load (read, compile or load from cache, link), configure (the guest's `configure`),
//! prepare (per call: grants, store, instance) and invoke (the guest's `invoke`).
//!
//! Failure policy: with `on-error = "ignore"` a [`PluginError::Failed`] or
//! [`PluginError::InvalidAdjustment`] is logged (`tracing::warn`) and the plugin skipped;
//! with `"fail"` (the default) it is returned. A [`PluginError::Denied`] is always returned:
//! a denial is a decision, not a failure. So is a [`PluginError::Conflict`], which involves
//! two plugins. A plugin's failure never panics or aborts the runtime.
//!
//! Only this module (in `host`) names wasmtime types; none appear in its public API.

#![warn(missing_docs)]

mod adjust;
pub(crate) use adjust::cdi::{KindDevice, devices_of_kind};
mod bench;
mod cache;
mod error;
mod host;
mod inspect;
pub mod manifest;
pub mod network;
mod select;
pub mod storage;
pub mod volume;

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::thread;
use std::time::{Duration, Instant};

use oci_spec::runtime::{Spec, State};

pub use adjust::{
    MAX_ANNOTATIONS, MAX_ENV_ENTRIES, MAX_LIST, MAX_MOUNT_OPTIONS, MAX_MOUNTS, MAX_STRING_BYTES,
};
pub use error::{FailureCause, Phase, PluginError};
pub use inspect::{
    DirInfo, GrantInfo, HookTest, Inspection, PluginInfo, Precompiled, parse_hook_point,
};

use manifest::PluginSpec;

/// The largest manifest [`PluginSet::load`] reads, in bytes (1 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// A point in the container lifecycle where plugins are called.
///
/// Displays and parses as in the manifest and the WIT: `pre-create`, `create-runtime`,
/// `create-container`, `start-container`, `poststart`, `poststop`, `pre-update`,
/// `post-delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    /// The spec is final but nothing exists yet: plugins may adjust it or deny.
    PreCreate,
    /// Namespaces exist, before `pivot_root`; runtime namespace.
    CreateRuntime,
    /// In the container's mount namespace, before `pivot_root`.
    CreateContainer,
    /// Just before the user process is executed.
    StartContainer,
    /// After the user process started.
    Poststart,
    /// After the container's process stopped and its resources were released.
    Poststop,
    /// Before `rwasm update` applies new resources: plugins may deny or clamp them.
    PreUpdate,
    /// After the container's state was removed.
    PostDelete,
}

impl HookPoint {
    /// Every hook point, in lifecycle order.
    pub const ALL: [HookPoint; 8] = [
        HookPoint::PreCreate,
        HookPoint::CreateRuntime,
        HookPoint::CreateContainer,
        HookPoint::StartContainer,
        HookPoint::Poststart,
        HookPoint::Poststop,
        HookPoint::PreUpdate,
        HookPoint::PostDelete,
    ];

    /// The name used by the manifest and the WIT, e.g. `pre-create`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::PreCreate => "pre-create",
            HookPoint::CreateRuntime => "create-runtime",
            HookPoint::CreateContainer => "create-container",
            HookPoint::StartContainer => "start-container",
            HookPoint::Poststart => "poststart",
            HookPoint::Poststop => "poststop",
            HookPoint::PreUpdate => "pre-update",
            HookPoint::PostDelete => "post-delete",
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`HookPoint`] from an unknown name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hook point `{0}`")]
pub struct UnknownHookPoint(pub String);

impl FromStr for HookPoint {
    type Err = UnknownHookPoint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HookPoint::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownHookPoint(s.to_string()))
    }
}

/// What a plugin's failure does to the container operation (manifest key `on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The operation fails with the plugin's error (the default).
    #[default]
    Fail,
    /// The failure is logged as a warning and the plugin skipped for this call.
    Ignore,
}

/// One edit applied to the spec at pre-create, attributed to the plugin that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The plugin's manifest name.
    pub plugin: String,
    /// What was done, e.g. `set env FOO`, `replaced annotation k`,
    /// `added bind mount /src -> /dst (ro,bind)`. Env and annotation values are not shown.
    pub description: String,
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.plugin, self.description)
    }
}

struct Plugin {
    spec: PluginSpec,
    loaded: OnceCell<host::Loaded>,
}

/// The plugins of one manifest, loaded lazily.
///
/// Neither `Send` nor `Sync`: one per process or per container operation.
pub struct PluginSet {
    manifest: Option<PathBuf>,
    cache_dir: PathBuf,
    plugins: Vec<Plugin>,
    /// The manifest's `cdi-spec-dirs`.
    cdi_spec_dirs: Vec<PathBuf>,
    host: OnceCell<host::Host>,
    /// The background load started by [`PluginSet::prefetch`], joined by the first call.
    prefetch: RefCell<Option<thread::JoinHandle<Prefetched>>>,
}

/// What a background load produced: the host, and each plugin's load by index. Failures
/// are dropped: the first call loads that plugin again and reports its error.
struct Prefetched {
    host: Option<host::Host>,
    loaded: Vec<(usize, host::Loaded, host::Origin, Duration)>,
}

impl fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSet")
            .field("manifest", &self.manifest)
            .field(
                "plugins",
                &self.plugins.iter().map(|p| &p.spec).collect::<Vec<_>>(),
            )
            .field("cdi_spec_dirs", &self.cdi_spec_dirs)
            .finish_non_exhaustive()
    }
}

impl PluginSet {
    /// A set without plugins: every hook point is a no-op.
    pub fn empty() -> PluginSet {
        PluginSet {
            manifest: None,
            cache_dir: PathBuf::new(),
            plugins: Vec::new(),
            cdi_spec_dirs: Vec::new(),
            host: OnceCell::new(),
            prefetch: RefCell::new(None),
        }
    }

    /// Parses and validates the manifest (load + configure phase checks that need no wasm);
    /// no side effects. Plugin paths are resolved against the manifest's directory;
    /// compiled components will be cached in `cache_dir` (created 0700 on first use).
    pub fn load(manifest: &Path, cache_dir: &Path) -> Result<PluginSet, PluginError> {
        let read_err = |source| PluginError::ManifestRead {
            path: manifest.to_path_buf(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(manifest)
            .and_then(|f| {
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, MAX_MANIFEST_BYTES + 1),
                    &mut text,
                )
            })
            .map_err(read_err)?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(read_err(std::io::Error::other(format!(
                "larger than {MAX_MANIFEST_BYTES} bytes; a manifest is a short TOML file"
            ))));
        }
        let parsed = manifest::parse(manifest, &text)?;
        Ok(PluginSet {
            // Absolute: containers, volumes and networks record it for later commands,
            // which may run in another directory.
            manifest: Some(
                std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf()),
            ),
            cache_dir: cache_dir.to_path_buf(),
            plugins: parsed
                .plugins
                .into_iter()
                .map(|spec| Plugin {
                    spec,
                    loaded: OnceCell::new(),
                })
                .collect(),
            cdi_spec_dirs: parsed.cdi_spec_dirs,
            host: OnceCell::new(),
            prefetch: RefCell::new(None),
        })
    }

    /// The plugins' names, in manifest order (for `rwasm info`).
    pub fn names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.spec.name.as_str()).collect()
    }

    /// The names of the manifest's plugins of `kind` (`network-driver`, `storage-driver`,
    /// `volume-driver` or `hook`, as the manifest spells it), in manifest order (for
    /// `rwasm info`).
    pub fn names_of_kind(&self, kind: &str) -> Vec<&str> {
        self.plugins
            .iter()
            .filter(|p| p.spec.kind.as_str() == kind)
            .map(|p| p.spec.name.as_str())
            .collect()
    }

    /// The hook points the manifest registers the plugin `name` for, in manifest order;
    /// `None` when it has no plugin of that name (for `rwasm plugin test`'s warning).
    pub fn hooks_of(&self, name: &str) -> Option<&[HookPoint]> {
        self.plugin(name).map(|p| p.spec.hooks.as_slice())
    }

    /// The manifest's plugin named `name`.
    fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.spec.name == name)
    }

    /// The manifest this set was loaded from (made absolute), `None` for [`PluginSet::empty`].
    pub fn manifest_path(&self) -> Option<&Path> {
        self.manifest.as_deref()
    }

    /// Starts loading, on a background thread, the engine and every plugin registered for
    /// one of `points` (from the compile cache, or compiled and cached), so that the load
    /// (≈1 ms for the first plugin of a process, ≈0.5 ms for each further one, see
    /// bench/RESULTS.md) overlaps the container work before the first hook point; `create`
    /// starts it once init runs on its own (`CreateOptions::prefetch`). No-op
    /// when no such plugin exists or loading has begun. Only the plugins of `points` are
    /// loaded: a process that calls other points loads those on first use. A load that
    /// fails here is retried, and its error reported, by the first call of that plugin.
    pub fn prefetch(&self, points: &[HookPoint]) {
        if self.host.get().is_some() || self.prefetch.borrow().is_some() {
            return;
        }
        let wanted: Vec<(usize, PluginSpec)> = self
            .plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.spec.hooks.iter().any(|h| points.contains(h)))
            .map(|(i, p)| (i, p.spec.clone()))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let (fuel, max_memory) = self.engine_needs();
        let cache_dir = self.cache_dir.clone();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let spawned = thread::Builder::new()
            .name("rwasm-plugin-load".to_string())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let Ok(host) = host::Host::new(fuel, max_memory) else {
                        return Prefetched {
                            host: None,
                            loaded: Vec::new(),
                        };
                    };
                    let loaded = wanted
                        .iter()
                        .filter_map(|(i, spec)| {
                            let started = Instant::now();
                            let (loaded, origin) = host.load(spec, &cache_dir).ok()?;
                            let elapsed = started.elapsed();
                            host.warm(&loaded, spec);
                            Some((*i, loaded, origin, elapsed))
                        })
                        .collect();
                    Prefetched {
                        host: Some(host),
                        loaded,
                    }
                })
            });
        match spawned {
            Ok(handle) => *self.prefetch.borrow_mut() = Some(handle),
            Err(e) => {
                tracing::debug!(error = %e, "no background plugin load; loading on first use")
            }
        }
    }

    /// Takes over what [`PluginSet::prefetch`] loaded, waiting for it if needed.
    /// What the set's engine must provide: fuel metering (some plugin has a `fuel`
    /// budget) and the largest `memory-limit` in bytes (the size of a pooled memory slot).
    fn engine_needs(&self) -> (bool, u64) {
        let fuel = self.plugins.iter().any(|p| p.spec.fuel.is_some());
        let max_memory = self
            .plugins
            .iter()
            .map(|p| p.spec.memory_limit)
            .max()
            .unwrap_or(manifest::DEFAULT_MEMORY_LIMIT);
        (fuel, max_memory)
    }

    /// The set's host, created (engine, linker) on first use.
    fn host_or_new(&self) -> Result<&host::Host, FailureCause> {
        if let Some(host) = self.host.get() {
            return Ok(host);
        }
        let (fuel, max_memory) = self.engine_needs();
        let host = host::Host::new(fuel, max_memory)?;
        Ok(self.host.get_or_init(|| host))
    }

    fn join_prefetch(&self) {
        let Some(handle) = self.prefetch.borrow_mut().take() else {
            return;
        };
        let started = Instant::now();
        let Ok(prefetched) = handle.join() else {
            return;
        };
        tracing::debug!(
            waited_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "background plugin load joined"
        );
        if let Some(host) = prefetched.host {
            let _ = self.host.set(host);
            for (i, loaded, origin, elapsed) in prefetched.loaded {
                tracing::debug!(
                    plugin = %self.plugins[i].spec.name,
                    origin = ?origin,
                    elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                    "plugin loaded (in the background)"
                );
                let _ = self.plugins[i].loaded.set(loaded);
            }
        }
    }

    /// Whether any plugin is registered for `point`.
    pub fn wants(&self, point: HookPoint) -> bool {
        self.plugins.iter().any(|p| p.spec.hooks.contains(&point))
    }

    /// Pre-create: calls the plugins registered for it that match the container (see
    /// [`PluginSet::invoke`] for order and selection). Each sees the spec as adjusted by
    /// those before it; its adjustment is validated against its grants and that spec and
    /// applied (see the `adjust` module for every kind's rules). Two plugins setting or
    /// removing the same field (env name, annotation key, mount destination, device path,
    /// CDI device, each resource field, rlimit type, cgroups path, args) is a
    /// [`PluginError::Conflict`] naming both, as in NRI. Returns what was applied,
    /// attributed to plugins. On error `spec` is left unchanged.
    pub fn pre_create(&self, state: &State, spec: &mut Spec) -> Result<Vec<Applied>, PluginError> {
        let point = HookPoint::PreCreate;
        if !self.wants(point) {
            return Ok(Vec::new());
        }
        let selection_keys = self.selection_keys();
        let mut working = spec.clone();
        let mut owners = adjust::Owners::default();
        let mut applied = Vec::new();
        let mut call: Option<host::Call> = None;
        for plugin in self.ordered(point) {
            if !plugin.spec.selector.matches(&working) {
                continue;
            }
            let span = tracing::info_span!("plugin", plugin = %plugin.spec.name, hook = %point);
            let _entered = span.enter();
            // Re-encoded only after a plugin changed the spec.
            let Some(adjustment) = self.answer(plugin, point, &mut call, || {
                self.encode(point, state, &working)
            })?
            else {
                continue;
            };
            let rules = adjust::Rules {
                plugin: &plugin.spec,
                cdi_spec_dirs: &self.cdi_spec_dirs,
                selection_keys: &selection_keys,
            };
            match adjust::apply(&rules, &owners, adjustment, &working) {
                Ok(outcome) => {
                    owners.commit(&plugin.spec.name, &outcome);
                    for a in &outcome.applied {
                        tracing::info!(plugin = %a.plugin, hook = %point, "{}", a.description);
                    }
                    applied.extend(outcome.applied);
                    working = outcome.spec;
                    call = None;
                }
                Err(e @ PluginError::Conflict { .. }) => return Err(e),
                Err(e) => self.on_failure(plugin, e)?,
            }
        }
        *spec = working;
        Ok(applied)
    }

    /// Pre-update: before `rwasm update` applies `update` (the new `linux.resources`) to
    /// the container described by `state` and `spec`. Each plugin registered for
    /// `pre-update` that matches the container (order and selection as in
    /// [`PluginSet::invoke`]) sees the update as clamped by those before it; a `deny`
    /// verdict refuses the update ([`PluginError::Denied`]); an adjustment may only carry
    /// `resources`, which clamp `update` by the pre-create rules: a field unset in `update`
    /// may be set, a set one only tightened (loosening needs `loosen-resources`). Returns
    /// what was clamped, attributed to plugins (e.g. `tightened resources.memory.limit
    /// from 268435456 to 134217728`); on error `update` is left unchanged.
    pub fn pre_update(
        &self,
        state: &State,
        spec: &Spec,
        update: &mut oci_spec::runtime::LinuxResources,
    ) -> Result<Vec<Applied>, PluginError> {
        let point = HookPoint::PreUpdate;
        if !self.wants(point) {
            return Ok(Vec::new());
        }
        let mut pending = update.clone();
        let mut applied = Vec::new();
        let mut call: Option<host::Call> = None;
        for plugin in self.ordered(point) {
            if !plugin.spec.selector.matches(spec) {
                continue;
            }
            let span = tracing::info_span!("plugin", plugin = %plugin.spec.name, hook = %point);
            let _entered = span.enter();
            let Some(adjustment) = self.answer(plugin, point, &mut call, || {
                host::Call::new(point, state, spec, Some(&pending))
            })?
            else {
                continue;
            };
            let rules = adjust::Rules {
                plugin: &plugin.spec,
                cdi_spec_dirs: &self.cdi_spec_dirs,
                selection_keys: &[],
            };
            let mut next = pending.clone();
            match adjust::clamp_update(&rules, adjustment, &mut next) {
                Ok(clamped) => {
                    for a in &clamped {
                        tracing::info!(plugin = %a.plugin, hook = %point, "{}", a.description);
                    }
                    applied.extend(clamped);
                    pending = next;
                    call = None;
                }
                Err(e) => self.on_failure(plugin, e)?,
            }
        }
        *update = pending;
        Ok(applied)
    }

    /// Any other point: calls the plugins registered for it, in order: manifest `order`
    /// (lower first, default 0), then manifest position. A plugin with a `[plugin.match]`
    /// table is called only for containers it matches: every listed annotation present
    /// with its value (`*` for any value), and the image name (annotation
    /// `org.opencontainers.image.ref.name`, else `org.rwasm.image`) matching one of the
    /// `images` globs (`*` any run of characters, `?` one). At pre-create the spec as
    /// adjusted so far is matched.
    ///
    /// A `deny` verdict → [`PluginError::Denied`]; a non-empty adjustment → an
    /// [`PluginError::InvalidAdjustment`] (only pre-create may adjust, through
    /// [`PluginSet::pre_create`]; this holds for `invoke(HookPoint::PreCreate, ..)` too, whose
    /// spec cannot be changed).
    pub fn invoke(&self, point: HookPoint, state: &State, spec: &Spec) -> Result<(), PluginError> {
        if !self.wants(point) {
            return Ok(());
        }
        let mut call = None;
        for plugin in self.ordered(point) {
            if !plugin.spec.selector.matches(spec) {
                continue;
            }
            let span = tracing::info_span!("plugin", plugin = %plugin.spec.name, hook = %point);
            let _entered = span.enter();
            if let Some(adjustment) =
                self.answer(plugin, point, &mut call, || self.encode(point, state, spec))?
            {
                let err = PluginError::InvalidAdjustment {
                    plugin: plugin.spec.name.clone(),
                    field: "adjustment".to_string(),
                    reason: format!(
                        "only pre-create may adjust the spec, but {point} returned {}",
                        adjustment.summary()
                    ),
                };
                self.on_failure(plugin, err)?;
            }
        }
        Ok(())
    }

    /// The plugins registered for `point`, by (`order`, manifest position).
    fn ordered(&self, point: HookPoint) -> Vec<&Plugin> {
        let mut list: Vec<&Plugin> = self.registered(point).collect();
        list.sort_by_key(|p| p.spec.order);
        list
    }

    fn registered(&self, point: HookPoint) -> impl Iterator<Item = &Plugin> {
        self.plugins
            .iter()
            .filter(move |p| p.spec.hooks.contains(&point))
    }

    fn encode(
        &self,
        point: HookPoint,
        state: &State,
        spec: &Spec,
    ) -> Result<host::Call, PluginError> {
        host::Call::new(point, state, spec, None)
    }

    /// Calls `plugin` at `point` with `call`, encoded first by `encode` when it is `None`
    /// (callers clear it after a plugin changed what is encoded). `Ok(None)`: nothing to
    /// apply, because the plugin asked for nothing, or it failed and its `on-error` is
    /// `ignore`; a denial, or a failure with `on-error = "fail"`, is the error.
    fn answer(
        &self,
        plugin: &Plugin,
        point: HookPoint,
        call: &mut Option<host::Call>,
        encode: impl FnOnce() -> Result<host::Call, PluginError>,
    ) -> Result<Option<adjust::Adjustment>, PluginError> {
        let encoded = match call {
            Some(c) => c,
            None => call.insert(encode()?),
        };
        match self.call_one(plugin, point, encoded) {
            Ok(adjustment) if adjustment.is_empty() => Ok(None),
            Ok(adjustment) => Ok(Some(adjustment)),
            Err(e) => {
                self.on_failure(plugin, e)?;
                Ok(None)
            }
        }
    }

    /// Applies the plugin's `on-error` to a failure; a denial or conflict always passes.
    fn on_failure(&self, plugin: &Plugin, err: PluginError) -> Result<(), PluginError> {
        let ignorable = matches!(
            err,
            PluginError::Failed { .. } | PluginError::InvalidAdjustment { .. }
        );
        if ignorable && plugin.spec.on_error == OnError::Ignore {
            tracing::warn!(error = %crate::error_chain(&err), "plugin failure ignored (on-error = \"ignore\")");
            return Ok(());
        }
        Err(err)
    }

    /// Loads the plugin if needed and calls it; `Ok` is an allow verdict.
    fn call_one(
        &self,
        plugin: &Plugin,
        point: HookPoint,
        call: &host::Call,
    ) -> Result<adjust::Adjustment, PluginError> {
        let failed = |phase, cause| PluginError::Failed {
            plugin: plugin.spec.name.clone(),
            point,
            phase,
            cause,
        };
        self.join_prefetch();
        let host = self
            .host_or_new()
            .map_err(|cause| failed(Phase::Load, cause))?;
        let loaded = match plugin.loaded.get() {
            Some(loaded) => loaded,
            None => {
                let started = Instant::now();
                let (loaded, origin) = host
                    .load(&plugin.spec, &self.cache_dir)
                    .map_err(|cause| failed(Phase::Load, cause))?;
                tracing::debug!(
                    origin = ?origin,
                    elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "plugin loaded"
                );
                plugin.loaded.get_or_init(|| loaded)
            }
        };
        match host.call(loaded, &plugin.spec, point, call) {
            Ok(host::Outcome::Allow(adjustment)) => Ok(*adjustment),
            Ok(host::Outcome::Deny(reason)) => Err(PluginError::Denied {
                plugin: plugin.spec.name.clone(),
                point,
                reason,
            }),
            Err((phase, cause)) => Err(failed(phase, cause)),
        }
    }
}
