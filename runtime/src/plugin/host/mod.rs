//! The wasmtime host of the `hook` world: the one module that generates the host bindings
//! (STYLE.md 7) and the only one that names wasmtime types (STYLE.md 6).
//!
//! - One [`Engine`] per plugin set, created on first use, with epoch interruption. The
//!   epoch advances every [`EPOCH_TICK`] only while a call runs (no wakeups between
//!   calls): by the epoch ticker thread for inline calls and abandoned calls still
//!   running, by the waiting thread for calls on the worker (by the ticker too while an
//!   abandoned call runs, so the epoch never has two sources at once). Fuel
//!   metering is switched on only when some plugin of the set
//!   has a `fuel` budget; the others then get an unlimited budget.
//! - Components are compiled once and cached (see [`super::cache`]); a cached artifact whose
//!   checksum does not hold, or that no longer deserializes, is recompiled and replaced.
//! - Load checks the component's exports (the `hook` world of a hosted version: 0.3.0,
//!   0.2.0 or 0.1.0; another major or a newer version, or another world's interface, is a clear
//!   error) and its imports against the plugin's grants (`grants`).
//! - Every call gets a fresh store and instance: a WASI context with nothing inherited
//!   (no env, args, network or stdin; stdout and stderr captured in memory, up to
//!   [`STDOUT_CAPACITY`] bytes each — a guest writing more traps), only the granted
//!   directories preopened, a memory cap per linear memory (at most [`MAX_MEMORIES`]
//!   memories), an epoch deadline, optional fuel; then `configure(config)` and
//!   `invoke(call)`.
//! - Where a call runs. A guest waiting on a clock (a sleep) waits at most until its
//!   call's deadline (see `clock`), so the epoch stops it there. That is the only way a
//!   plugin without filesystem grants can block in a host call, so its calls run
//!   **inline** on the calling thread (no thread hand-over), with the epoch advanced by a
//!   ticker thread that runs only while a call is active (see `ticker`). A plugin with
//!   filesystem grants can block in a file operation (a read of a FIFO, say), which
//!   nothing can interrupt, so its calls run on a worker thread (kept for the next call),
//!   watched from the calling thread: the caller stops waiting [`WATCHDOG_GRACE`] after the
//!   deadline, reports the deadline and gives up that worker; the abandoned thread traps
//!   at its next epoch check and exits.
//! - wasmtime-wasi's sync host functions run futures on the current tokio runtime, or else
//!   start a global multi-thread one (a worker per CPU and a blocking pool) for good. So
//!   inline calls enter the ticker's current-thread runtime (the ticker drives it while it
//!   ticks), and each call worker has its own, entered around every call and driven by
//!   the caller while it waits for the reply. File operations run inline on the worker
//!   (`allow_blocking_current_thread`) instead of hopping to a blocking pool. When an
//!   abandoned call is still running, a thread of its own keeps driving that runtime until
//!   the call ends. If rwasm's caller runs inside a tokio runtime itself (it cannot
//!   `block_on` ours there), calls go to the worker without a runtime, which is
//!   wasmtime-wasi's global one.

use std::cell::RefCell;
use std::fs;
use std::hash::Hash;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::FailureCause;
use super::adjust::Adjustment;
use super::cache;
use super::manifest::PluginSpec;

mod clock;
mod convert;
mod driver_call;
mod grants;
mod limits;
mod net_ctx;
mod net_exec;
mod network;
mod state;
mod storage;
mod storage_ctx;
mod ticker;
mod volume;
mod worker;

pub(crate) use convert::{Call, IMAGE_REF_ANNOTATION, RWASM_IMAGE_ANNOTATION};
pub(crate) use network::NetCtx;
use state::HostState;
pub(crate) use storage::StorageCtx;
pub(crate) use storage_ctx::unmount_all;
use ticker::Ticker;
use worker::Worker;

/// Host bindings of the current package, `rwasm:plugin@0.3.0`.
mod bindings {
    wasmtime::component::bindgen!({ world: "hook", path: "../sdk/wit" });
}

/// Host bindings of `rwasm:plugin@0.2.0`, frozen in `sdk/wit-compat/0.2.0/`. Its `types`
/// are those of 0.3.0 but for the `protocol` enum no 0.2.0 function uses, so the 0.3.0
/// Rust types serve both (component values are checked structurally, by field and case
/// names, at link time) and one set of conversions does.
mod bindings_v0_2 {
    wasmtime::component::bindgen!({
        world: "hook",
        path: "../sdk/wit-compat/0.2.0",
        with: { "rwasm:plugin/types": super::bindings::rwasm::plugin::types },
    });
}

/// Host bindings of `rwasm:plugin@0.1.0`, frozen in `sdk/wit-compat/0.1.0/`, so that
/// plugins built against it keep loading.
mod bindings_v0_1 {
    wasmtime::component::bindgen!({ world: "hook", path: "../sdk/wit-compat/0.1.0" });
}

/// The export a hook plugin of the current version has (older plugins export
/// `rwasm:plugin/hooks@0.2.0` or `@0.1.0`).
const HOOKS_EXPORT: &str = "rwasm:plugin/hooks@0.3.0";

/// How often the epoch advances: the granularity of `timeout-ms`.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(EPOCH_TICK_MS);
const EPOCH_TICK_MS: u64 = 10;
/// How long past its deadline the caller waits for a call blocked in a host function.
pub(crate) const WATCHDOG_GRACE: Duration = Duration::from_millis(250);
/// Bytes of guest stdout and of guest stderr kept per call (256 KiB each).
pub(crate) const STDOUT_CAPACITY: usize = 256 << 10;
/// Linear memories one instance may have (the cap of `memory-limit` applies to each).
pub(crate) const MAX_MEMORIES: usize = 8;
/// Table elements one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// Instances one process may have at once in the pool: the calls of a short-lived `rwasm`
/// run one at a time, plus calls abandoned at their deadline that have not ended yet.
const POOL_INSTANCES: u32 = 4;
/// Bytes of each pooled linear memory zeroed with `memset` (kept mapped) when its instance
/// ends; the rest is reset with `madvise`. 0: in `plugin_call`, keeping 1 MiB resident
/// made a call slower (the memset was 10 % of the samples) than the page faults it saved.
const POOL_KEEP_RESIDENT: usize = 0;

/// The pooling allocator of every plugin engine. A fresh instance per call then reuses a
/// warm slot instead of mapping and unmapping its memories (the on-demand allocator's
/// `mmap`/`munmap` and page faults were about a third of a call). Address space is reserved
/// up front (per memory slot the usual 4 GiB reservation plus guard) but not committed.
fn pool(max_memory: u64) -> wasmtime::InstanceAllocationStrategy {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 8)
        .total_stacks(0)
        .max_memories_per_module(u32::try_from(MAX_MEMORIES).unwrap_or(8))
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        .table_elements(MAX_TABLE_ELEMENTS)
        .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
        .table_keep_resident(64 << 10);
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

/// Host `log` calls honoured per plugin call; the rest are dropped.
const MAX_LOG_CALLS: u32 = 1000;
/// Bytes of one host `log` message kept.
const MAX_LOG_BYTES: usize = 4 << 10;
/// Bytes of guest stderr quoted in a trap error.
const STDERR_TAIL_BYTES: usize = 1 << 10;

/// The engine and linker shared by the plugins of one set.
pub(crate) struct Host {
    engine: Engine,
    linker: Linker<HostState>,
    fuel: bool,
    engine_hash: String,
    worker: RefCell<Option<Worker>>,
    ticker: std::cell::OnceCell<Ticker>,
    /// Per plugin name: set while a call of it abandoned at its deadline still runs (on
    /// its drain thread); such a plugin is not called again until it ends.
    blocked:
        RefCell<std::collections::HashMap<String, std::sync::Arc<std::sync::atomic::AtomicBool>>>,
}

/// A component ready to instantiate.
pub(crate) struct Loaded {
    pre: Pre,
    engine: Engine,
    fuel: bool,
}

/// A linked component of one of the supported package versions.
#[derive(Clone)]
enum Pre {
    V0_3(bindings::HookPre<HostState>),
    V0_2(bindings_v0_2::HookPre<HostState>),
    V0_1(bindings_v0_1::HookPre<HostState>),
}

/// Where a component came from, for logs and `rwasm plugin precompile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Loaded from a verified cache entry.
    Cache,
    /// Compiled; there was no cache entry for this component and engine.
    Compiled,
    /// Compiled, replacing a cache entry that was corrupt or unusable.
    Replaced,
}

/// The state of a component's entry in the compile cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheState {
    /// An artifact for this exact component and engine exists and its checksum holds.
    Cached,
    /// The cache holds a compilation of an earlier version of this file, none of this one.
    Stale,
    /// The artifact exists but its checksum does not match (it will be rebuilt).
    Corrupt,
    /// Nothing cached for this component and engine.
    Missing,
}

/// The names a component imports and exports, sorted.
#[derive(Debug, Clone)]
pub(crate) struct Interfaces {
    pub(crate) imports: Vec<String>,
    pub(crate) exports: Vec<String>,
}

/// The hosted package version a hook component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookVersion {
    V0_3,
    V0_2,
    V0_1,
}

/// The `rwasm:plugin` interfaces that only another world exports, with that world.
const OTHER_WORLDS: &[(&str, &str)] = &[
    ("network", "network-driver"),
    ("storage", "storage-driver"),
    ("volume", "volume-driver"),
];

/// Which hosted version of the `hook` world `exports` implement, or why none.
fn hook_version(exports: &[String]) -> Result<HookVersion, FailureCause> {
    let rwasm: Vec<(&str, &str, &str)> = exports
        .iter()
        .filter_map(|e| {
            let rest = e.strip_prefix("rwasm:plugin/")?;
            let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
            Some((e.as_str(), iface, version))
        })
        .collect();
    if let Some((export, _, version)) = rwasm.iter().find(|(_, iface, _)| *iface == "hooks") {
        return match *version {
            "0.3.0" => Ok(HookVersion::V0_3),
            "0.2.0" => Ok(HookVersion::V0_2),
            "0.1.0" => Ok(HookVersion::V0_1),
            other => {
                let parts: Vec<u64> = other
                    .split(['.', '-', '+'])
                    .filter_map(|p| p.parse().ok())
                    .collect();
                let newer = matches!(parts.as_slice(), [0, minor, ..] if *minor > 3)
                    || matches!(parts.as_slice(), [0, 3, patch, ..] if *patch > 0);
                Err(FailureCause::UnsupportedVersion {
                    found: if other.is_empty() {
                        "an unversioned package".to_string()
                    } else {
                        other.to_string()
                    },
                    interface: (*export).to_string(),
                    newer,
                })
            }
        };
    }
    for (export, iface, _) in &rwasm {
        if let Some((_, world)) = OTHER_WORLDS.iter().find(|(i, _)| i == iface) {
            return Err(FailureCause::WrongWorld {
                kind: "hook".to_string(),
                exports: (*export).to_string(),
                world: (*world).to_string(),
                missing: HOOKS_EXPORT.to_string(),
            });
        }
    }
    Err(FailureCause::Link {
        reason: format!(
            "the component does not export `{HOOKS_EXPORT}` (a hook plugin of world \
             rwasm:plugin/hook; 0.2.0 and 0.1.0 are accepted too); it exports: {}",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ),
    })
}

/// What a plugin decided.
pub(crate) enum Outcome {
    Allow(Box<Adjustment>),
    Deny(String),
}

fn describe(err: &wasmtime::Error) -> String {
    format!("{err:#}")
}

impl Host {
    /// Creates the engine (fuel metering on when `fuel`; instances from a pool whose
    /// linear memories may grow to `max_memory` bytes, the largest `memory-limit` of the
    /// set) and its linker.
    pub(crate) fn new(fuel: bool, max_memory: u64) -> Result<Host, FailureCause> {
        let engine_err = |e: wasmtime::Error| FailureCause::Engine {
            reason: describe(&e),
        };
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(fuel);
        config.allocation_strategy(pool(max_memory));
        let engine = Engine::new(&config).map_err(engine_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_err)?;
        clock::shadow(&mut linker).map_err(engine_err)?;
        bindings::Hook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        bindings_v0_2::Hook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        // The 0.2.0 `types` are the 0.3.0 Rust types (see `bindings_v0_2`), so its own
        // type-only instance is not registered by the line above.
        linker
            .instance("rwasm:plugin/types@0.2.0")
            .map_err(engine_err)?;
        bindings_v0_1::Hook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        network::add_to_linker(&mut linker).map_err(engine_err)?;
        storage::add_to_linker(&mut linker).map_err(engine_err)?;
        volume::add_to_linker(&mut linker).map_err(engine_err)?;
        let mut hasher = cache::StableHasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Host {
            engine,
            linker,
            fuel,
            engine_hash: hasher.short_hex(),
            worker: RefCell::new(None),
            ticker: std::cell::OnceCell::new(),
            blocked: RefCell::default(),
        })
    }

    /// Load phase: loads the component's cached compilation or reads and compiles (and
    /// caches) it, and links it against WASI and the `host` interface.
    pub(crate) fn load(
        &self,
        spec: &PluginSpec,
        cache_dir: &Path,
    ) -> Result<(Loaded, Origin), FailureCause> {
        let (component, origin) = self.component(&spec.path, cache_dir)?;
        let link = |e: wasmtime::Error| FailureCause::Link {
            reason: describe(&e),
        };
        let names = self.interfaces(&component);
        let version = hook_version(&names.exports)?;
        grants::check_imports(&spec.sandbox, names.imports.iter().map(String::as_str))?;
        let instance = self.linker.instantiate_pre(&component).map_err(link)?;
        let pre = match version {
            HookVersion::V0_3 => Pre::V0_3(bindings::HookPre::new(instance).map_err(link)?),
            HookVersion::V0_2 => Pre::V0_2(bindings_v0_2::HookPre::new(instance).map_err(link)?),
            HookVersion::V0_1 => {
                let newer = [super::HookPoint::PreUpdate, super::HookPoint::PostDelete];
                if let Some(point) = spec.hooks.iter().find(|p| newer.contains(p)) {
                    return Err(FailureCause::Link {
                        reason: format!(
                            "the plugin is built against rwasm:plugin@0.1.0, which has no hook \
                             point `{point}`; rebuild it against 0.3.0 or remove `{point}` from \
                             its hooks"
                        ),
                    });
                }
                Pre::V0_1(bindings_v0_1::HookPre::new(instance).map_err(link)?)
            }
        };
        Ok((
            Loaded {
                pre,
                engine: self.engine.clone(),
                fuel: self.fuel,
            },
            origin,
        ))
    }

    /// The import and export names of `component`, sorted.
    fn interfaces(&self, component: &Component) -> Interfaces {
        let ty = component.component_type();
        let mut imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let mut exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        imports.sort();
        exports.sort();
        Interfaces { imports, exports }
    }

    /// Compiles (or loads from the cache) the component at `path` and lists its imports
    /// and exports, without linking it: for `rwasm plugin inspect`.
    pub(crate) fn interfaces_of(
        &self,
        path: &Path,
        cache_dir: &Path,
    ) -> Result<Interfaces, FailureCause> {
        let (component, _) = self.component(path, cache_dir)?;
        Ok(self.interfaces(&component))
    }

    /// The state of `path`'s entry in the compile cache, for this engine.
    pub(crate) fn cache_state(
        &self,
        path: &Path,
        cache_dir: &Path,
    ) -> Result<CacheState, FailureCause> {
        let io = |source| FailureCause::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io)?;
        let id = cache::SourceId::of(&file.metadata().map_err(io)?);
        let mut wasm = Vec::new();
        file.read_to_end(&mut wasm).map_err(io)?;
        let digest = cache::sha256_hex(&wasm);
        let artifact = cache::artifact_path(cache_dir, &digest, &self.engine_hash);
        Ok(match cache::verify_artifact(&artifact) {
            cache::Verified::Good => CacheState::Cached,
            cache::Verified::Corrupt(_) => CacheState::Corrupt,
            cache::Verified::Missing => match cache::index_recorded(cache_dir, &id) {
                Some(old) if old != digest => CacheState::Stale,
                _ => CacheState::Missing,
            },
        })
    }

    fn component(
        &self,
        path: &Path,
        cache_dir: &Path,
    ) -> Result<(Component, Origin), FailureCause> {
        let io = |source| FailureCause::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io)?;
        // Taken before reading, so that a change while we read cannot match it later.
        let id = cache::SourceId::of(&file.metadata().map_err(io)?);
        let cache = match cache::private_dir(cache_dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "compile cache not used");
                false
            }
        };
        let indexed = cache.then(|| cache::index_lookup(cache_dir, &id)).flatten();
        // Whether an entry was there but had to be thrown away.
        let mut replaced = false;
        if let Some(digest) = &indexed {
            match self.cached(&cache::artifact_path(cache_dir, digest, &self.engine_hash)) {
                Cached::Hit(component) => return Ok((component, Origin::Cache)),
                Cached::Bad => replaced = true,
                Cached::Missing => {}
            }
        }
        let mut wasm = Vec::new();
        file.read_to_end(&mut wasm).map_err(io)?;
        let digest = cache::sha256_hex(&wasm);
        let artifact = cache.then(|| cache::artifact_path(cache_dir, &digest, &self.engine_hash));
        let index = || {
            if let Err(e) = cache::index_store(cache_dir, &id, &digest) {
                tracing::warn!(dir = %cache_dir.display(), error = %e, "cannot write the compile cache index");
            }
        };
        // An indexed digest that is still right was just tried.
        let tried = indexed.as_deref() == Some(digest.as_str());
        if !tried && let Some(file) = artifact.as_deref() {
            match self.cached(file) {
                Cached::Hit(component) => {
                    index();
                    return Ok((component, Origin::Cache));
                }
                Cached::Bad => replaced = true,
                Cached::Missing => {}
            }
        }
        let compile = |e: wasmtime::Error| FailureCause::Compile {
            path: path.to_path_buf(),
            reason: describe(&e),
        };
        let bytes = self.engine.precompile_component(&wasm).map_err(compile)?;
        if let Some(file) = &artifact {
            match cache::write_artifact(file, &bytes) {
                Ok(()) => index(),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write the compile cache");
                }
            }
        }
        // SAFETY: `bytes` was produced a moment ago by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(&self.engine, &bytes) }.map_err(compile)?;
        let origin = if replaced {
            Origin::Replaced
        } else {
            Origin::Compiled
        };
        Ok((component, origin))
    }

    /// The artifact `file` of the private cache directory, if it exists, its checksum
    /// holds and it deserializes.
    fn cached(&self, file: &Path) -> Cached {
        match cache::verify_artifact(file) {
            cache::Verified::Good => {}
            cache::Verified::Missing => return Cached::Missing,
            cache::Verified::Corrupt(reason) => {
                tracing::warn!(file = %file.display(), %reason, "cached compilation is corrupt; recompiling");
                return Cached::Bad;
            }
        }
        // SAFETY: wasmtime trusts a serialized artifact to be code it produced. This file
        // is named after the SHA-256 of a component (computed from its bytes, or recorded
        // for exactly this version of the source file — same size, mtime and ctime — by
        // `cache::index_store`) and the hash of this engine's compilation settings; it was
        // written completely (temporary file + rename, see `cache::write_atomic`) by this
        // host, in a directory that `cache::private_dir` just checked is owned by our
        // effective user and writable by no one else, and its length and CRC-32 match the
        // checksum written beside it (`cache::verify_artifact`; wasmtime does not checksum
        // code, so a flipped bit would otherwise run). wasmtime still checks the header,
        // version and settings and fails (we then recompile) on a mismatch. The file is
        // mapped, not copied: it must never be modified in place while a process uses it
        // (truncation would fault the mapping), which holds because artifacts are only ever
        // replaced by rename.
        match unsafe { Component::deserialize_file(&self.engine, file) } {
            Ok(component) => Cached::Hit(component),
            Err(e) => {
                tracing::warn!(
                    file = %file.display(),
                    error = %describe(&e),
                    "cached compilation is unusable; recompiling"
                );
                Cached::Bad
            }
        }
    }
}

/// What the cache had for one artifact name.
enum Cached {
    Hit(Component),
    /// There, but corrupt or unusable.
    Bad,
    Missing,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(exports: &[&str]) -> Result<HookVersion, String> {
        let exports: Vec<String> = exports.iter().map(|e| e.to_string()).collect();
        hook_version(&exports).map_err(|e| e.to_string())
    }

    #[test]
    fn hosted_versions_load() {
        assert_eq!(
            version(&["rwasm:plugin/hooks@0.3.0"]),
            Ok(HookVersion::V0_3)
        );
        assert_eq!(
            version(&["rwasm:plugin/hooks@0.2.0"]),
            Ok(HookVersion::V0_2)
        );
        assert_eq!(
            version(&["rwasm:plugin/hooks@0.1.0"]),
            Ok(HookVersion::V0_1)
        );
    }

    #[test]
    fn other_versions_are_refused_with_what_to_do() {
        assert_eq!(
            version(&["rwasm:plugin/hooks@1.0.0"]).unwrap_err(),
            "built for rwasm:plugin 1.0.0, this rwasm hosts 0.1.0, 0.2.0 and 0.3.0: rebuild it \
             against rwasm:plugin@0.3.0"
        );
        for newer in ["0.4.0", "0.3.1"] {
            let err = version(&[&format!("rwasm:plugin/hooks@{newer}")]).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "built for rwasm:plugin {newer}, which is newer than this rwasm (it hosts \
                     0.1.0, 0.2.0 and 0.3.0): upgrade rwasm"
                )
            );
        }
    }

    #[test]
    fn another_world_names_its_interface_and_the_missing_one() {
        assert_eq!(
            version(&["rwasm:plugin/storage@0.2.0"]).unwrap_err(),
            "listed as kind `hook`, but the component exports `rwasm:plugin/storage@0.2.0` \
             (world storage-driver), not `rwasm:plugin/hooks@0.3.0`"
        );
        let err = version(&["wasi:cli/run@0.2.6"]).unwrap_err();
        assert!(
            err.contains("does not export `rwasm:plugin/hooks@0.3.0`"),
            "{err}"
        );
        assert!(err.contains("wasi:cli/run@0.2.6"), "{err}");
    }
}
