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
//! - Components are compiled once and cached (see [`super::cache`]); a cached artifact that
//!   no longer deserializes is recompiled and replaced.
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
mod state;
mod ticker;
mod worker;

pub(crate) use convert::Call;
use state::HostState;
use ticker::Ticker;
use worker::Worker;

/// Host bindings of the current package, `rwasm:plugin@0.2.0`.
mod bindings {
    wasmtime::component::bindgen!({ world: "hook", path: "../sdk/wit" });
}

/// Host bindings of `rwasm:plugin@0.1.0`, frozen in `sdk/wit-compat/0.1.0/`, so that
/// plugins built against it keep loading.
mod bindings_v0_1 {
    wasmtime::component::bindgen!({ world: "hook", path: "../sdk/wit-compat/0.1.0" });
}

/// The export a hook plugin of each supported version has.
const HOOKS_EXPORT: &str = "rwasm:plugin/hooks@0.2.0";
const HOOKS_EXPORT_V0_1: &str = "rwasm:plugin/hooks@0.1.0";

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
    V0_2(bindings::HookPre<HostState>),
    V0_1(bindings_v0_1::HookPre<HostState>),
}

/// Where a component came from, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Cache,
    Compiled,
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
    /// Creates the engine (fuel metering on when `fuel`) and its linker.
    pub(crate) fn new(fuel: bool) -> Result<Host, FailureCause> {
        let engine_err = |e: wasmtime::Error| FailureCause::Engine {
            reason: describe(&e),
        };
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(fuel);
        let engine = Engine::new(&config).map_err(engine_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_err)?;
        clock::shadow(&mut linker).map_err(engine_err)?;
        bindings::Hook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        bindings_v0_1::Hook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        let mut hasher = cache::StableHasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Host {
            engine,
            linker,
            fuel,
            engine_hash: hasher.short_hex(),
            worker: RefCell::new(None),
            ticker: std::cell::OnceCell::new(),
        })
    }

    /// Load phase: loads the component's cached compilation or reads and compiles (and
    /// caches) it, and links it against WASI and the `host` interface.
    pub(crate) fn load(
        &self,
        spec: &PluginSpec,
        cache_dir: &Path,
    ) -> Result<(Loaded, Origin), FailureCause> {
        let (component, origin) = self.component(spec, cache_dir)?;
        let link = |e: wasmtime::Error| FailureCause::Link {
            reason: describe(&e),
        };
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        let instance = self.linker.instantiate_pre(&component).map_err(link)?;
        let pre = if has(HOOKS_EXPORT) {
            Pre::V0_2(bindings::HookPre::new(instance).map_err(link)?)
        } else if has(HOOKS_EXPORT_V0_1) {
            let newer = [super::HookPoint::PreUpdate, super::HookPoint::PostDelete];
            if let Some(point) = spec.hooks.iter().find(|p| newer.contains(p)) {
                return Err(FailureCause::Link {
                    reason: format!(
                        "the plugin is built against rwasm:plugin@0.1.0, which has no hook \
                         point `{point}`; rebuild it against 0.2.0 or remove `{point}` from \
                         its hooks"
                    ),
                });
            }
            Pre::V0_1(bindings_v0_1::HookPre::new(instance).map_err(link)?)
        } else {
            return Err(FailureCause::Link {
                reason: format!(
                    "the component does not export `{HOOKS_EXPORT}` (a hook plugin of world \
                     rwasm:plugin/hook; 0.1.0 is accepted too); it exports: {}",
                    if exports.is_empty() {
                        "nothing".to_string()
                    } else {
                        exports.join(", ")
                    }
                ),
            });
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

    fn component(
        &self,
        spec: &PluginSpec,
        cache_dir: &Path,
    ) -> Result<(Component, Origin), FailureCause> {
        let io = |source| FailureCause::Io {
            path: spec.path.clone(),
            source,
        };
        let mut file = fs::File::open(&spec.path).map_err(io)?;
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
        if let Some(digest) = &indexed
            && let Some(component) =
                self.cached(&cache::artifact_path(cache_dir, digest, &self.engine_hash))
        {
            return Ok((component, Origin::Cache));
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
        if !tried && let Some(component) = artifact.as_deref().and_then(|f| self.cached(f)) {
            index();
            return Ok((component, Origin::Cache));
        }
        let compile = |e: wasmtime::Error| FailureCause::Compile {
            path: spec.path.clone(),
            reason: describe(&e),
        };
        let bytes = self.engine.precompile_component(&wasm).map_err(compile)?;
        if let Some(file) = &artifact {
            match cache::write_atomic(file, &bytes) {
                Ok(()) => index(),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write the compile cache");
                }
            }
        }
        // SAFETY: `bytes` was produced a moment ago by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(&self.engine, &bytes) }.map_err(compile)?;
        Ok((component, Origin::Compiled))
    }

    /// The artifact `file` of the private cache directory, if it exists and deserializes.
    fn cached(&self, file: &Path) -> Option<Component> {
        if !file.is_file() {
            return None;
        }
        // SAFETY: wasmtime trusts a serialized artifact to be code it produced. This file
        // is named after the SHA-256 of a component (computed from its bytes, or recorded
        // for exactly this version of the source file — same size, mtime and ctime — by
        // `cache::index_store`) and the hash of this engine's compilation settings; it was
        // written completely (temporary file + rename, see `cache::write_atomic`) by this
        // host, in a directory that `cache::private_dir` just checked is owned by our
        // effective user and writable by no one else. wasmtime still checks the header,
        // version and settings and fails (we then recompile) on a mismatch. The file is
        // mapped, not copied: it must never be modified in place while a process uses it
        // (truncation would fault the mapping), which holds because artifacts are only ever
        // replaced by rename.
        match unsafe { Component::deserialize_file(&self.engine, file) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(
                    file = %file.display(),
                    error = %describe(&e),
                    "cached compilation is unusable; recompiling"
                );
                None
            }
        }
    }
}
