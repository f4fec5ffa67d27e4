//! The wasmtime host of the `hook` world: the one module that generates the host bindings
//! (STYLE.md 7) and the only one that names wasmtime types (STYLE.md 6).
//!
//! - One [`Engine`] per plugin set, created on first use, with epoch interruption. The
//!   epoch advances every [`EPOCH_TICK`] only while a call runs, advanced by the thread
//!   waiting for it (no ticker thread, no wakeups between calls). Fuel metering is switched on only when some
//!   plugin of the set has a `fuel` budget; the others then get an unlimited budget.
//! - Components are compiled once and cached (see [`super::cache`]); a cached artifact that
//!   no longer deserializes is recompiled and replaced.
//! - Every call gets a fresh store and instance: a WASI context with nothing inherited
//!   (no env, args, network or stdin; stdout and stderr captured in memory, up to
//!   [`STDOUT_CAPACITY`] bytes each — a guest writing more traps), only the granted
//!   directories preopened, a memory cap per linear memory (at most [`MAX_MEMORIES`]
//!   memories), an epoch deadline, optional fuel; then `configure(config)` and
//!   `invoke(call)`.
//! - The call runs on a worker thread (kept for the next call), watched from the calling
//!   thread: when a guest is blocked in a host call (a sleep, say) the epoch cannot
//!   interrupt it, so the caller stops waiting [`WATCHDOG_GRACE`] after the deadline, reports
//!   the deadline and gives up that worker; the abandoned thread traps at its next epoch
//!   check and exits.
//! - wasmtime-wasi's sync host functions run futures on the current tokio runtime, or else
//!   start a global multi-thread one (a worker per CPU and a blocking pool) for good. So
//!   each call worker has its own current-thread runtime, entered around every call, and
//!   the caller drives it (timers, I/O) while it waits for the reply: no extra thread.
//!   File operations run inline on the worker (`allow_blocking_current_thread`) instead of
//!   hopping to a blocking pool. When an abandoned call is still running, a thread of its
//!   own keeps driving that runtime until the call ends. If rwasm's caller runs inside a
//!   tokio runtime itself (it cannot `block_on` ours there), calls fall back to the worker
//!   without a runtime, which is wasmtime-wasi's global one.

use std::cell::RefCell;
use std::fs;
use std::future::Future;
use std::hash::Hash;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::adjust::{Adjustment, MAX_STRING_BYTES, MountRequest};
use super::cache;
use super::manifest::{ConfigValue, PluginSpec};
use super::{FailureCause, HookPoint, Phase};

mod bindings {
    wasmtime::component::bindgen!({ world: "hook", path: "../sdk/wit" });
}

use bindings::rwasm::plugin::{host as wit_host, types as wit};

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
}

/// A component ready to instantiate.
pub(crate) struct Loaded {
    pre: bindings::HookPre<HostState>,
    engine: Engine,
    fuel: bool,
}

/// Where a component came from, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Cache,
    Compiled,
}

/// One hook invocation, encoded once and handed to every plugin.
pub(crate) struct Call {
    call: wit::HookCall,
}

/// What a plugin decided.
pub(crate) enum Outcome {
    Allow(Adjustment),
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
        bindings::Hook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        let mut hasher = cache::StableHasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Host {
            engine,
            linker,
            fuel,
            engine_hash: hasher.short_hex(),
            worker: RefCell::new(None),
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
        let pre = self.linker.instantiate_pre(&component).map_err(link)?;
        let pre = bindings::HookPre::new(pre).map_err(link)?;
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

impl Call {
    /// Encodes the state and the spec (already JSON) for `point`.
    pub(crate) fn new(
        point: HookPoint,
        state: &oci_spec::runtime::State,
        spec_json: String,
    ) -> Call {
        use oci_spec::runtime::ContainerState;
        let mut annotations: Vec<(String, String)> = state
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.sort();
        let status = match state.status() {
            ContainerState::Creating => wit::Status::Creating,
            ContainerState::Created => wit::Status::Created,
            ContainerState::Running => wit::Status::Running,
            ContainerState::Stopped => wit::Status::Stopped,
        };
        Call {
            call: wit::HookCall {
                point: match point {
                    HookPoint::PreCreate => wit::HookPoint::PreCreate,
                    HookPoint::CreateRuntime => wit::HookPoint::CreateRuntime,
                    HookPoint::CreateContainer => wit::HookPoint::CreateContainer,
                    HookPoint::StartContainer => wit::HookPoint::StartContainer,
                    HookPoint::Poststart => wit::HookPoint::Poststart,
                    HookPoint::Poststop => wit::HookPoint::Poststop,
                },
                state: wit::State {
                    oci_version: state.version().clone(),
                    id: state.id().clone(),
                    status,
                    pid: *state.pid(),
                    bundle: state.bundle().to_string_lossy().into_owned(),
                    annotations,
                },
                spec: spec_json,
            },
        }
    }
}

/// The phase a call is in, shared with the watchdog.
#[derive(Clone)]
struct PhaseCell(Arc<AtomicU8>);

impl PhaseCell {
    fn new() -> PhaseCell {
        PhaseCell(Arc::new(AtomicU8::new(0)))
    }

    fn set(&self, phase: Phase) {
        let n = match phase {
            Phase::Load | Phase::Prepare => 0,
            Phase::Configure => 1,
            Phase::Invoke => 2,
        };
        self.0.store(n, Ordering::Relaxed);
    }

    fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            1 => Phase::Configure,
            2 => Phase::Invoke,
            _ => Phase::Prepare,
        }
    }
}

/// A unit of work for the call thread.
type Task = Box<dyn FnOnce() + Send>;

/// The thread that runs plugin calls, one at a time, while the caller watches the clock.
/// Reusing it saves a thread start (and wasmtime's per-thread set-up) per call; the
/// hand-over itself costs about 80 µs a call on the 2-core test machine (a fresh instance
/// and call ≈ 50 µs inline, ≈ 130–165 µs through the worker). A worker stuck in a call
/// past its deadline is dropped and replaced; it exits once its call ends, as its queue is
/// then closed.
struct Worker {
    /// Tasks, each with whether to enter the worker's runtime around it.
    tx: mpsc::Sender<(Task, bool)>,
    /// The worker's current-thread runtime, driven by whoever waits for its calls; `None`
    /// once handed to a drainer.
    rt: Option<tokio::runtime::Runtime>,
}

impl Worker {
    fn spawn() -> std::io::Result<Worker> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = mpsc::channel::<(Task, bool)>();
        thread::Builder::new()
            .name("rwasm-plugin-call".to_string())
            .spawn(move || {
                while let Ok((task, enter)) = rx.recv() {
                    // wasmtime-wasi's `in_tokio` now finds this runtime current.
                    let _runtime = enter.then(|| handle.enter());
                    task();
                }
            })?;
        Ok(Worker { tx, rt: Some(rt) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Never blocks (dropping a runtime inside a caller's async context would panic);
        // with file operations inline there are no blocking-pool threads to wait for.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The result of one call as the worker returns it.
type CallResult = Result<Outcome, (Phase, FailureCause)>;

/// The caller's end of a call's reply: a channel plus the waker of the thread that drives
/// the worker's runtime while it waits. Resolves to `None` when the worker died.
struct Reply {
    rx: mpsc::Receiver<CallResult>,
    waker: Arc<Mutex<Option<Waker>>>,
}

/// The worker's end: sends the result, then wakes the waiting thread, also when the call
/// panics (the reply then resolves to `None`).
struct Replier {
    tx: Option<mpsc::SyncSender<CallResult>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

fn reply_channel() -> (Replier, Reply) {
    let (tx, rx) = mpsc::sync_channel(1);
    let waker = Arc::new(Mutex::new(None));
    (
        Replier {
            tx: Some(tx),
            waker: waker.clone(),
        },
        Reply { rx, waker },
    )
}

impl Replier {
    fn send(mut self, result: CallResult) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(result);
        }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        drop(self.tx.take());
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Reply {
    type Output = Option<CallResult>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The waker is registered before looking, so a reply sent in between still wakes us.
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        match self.rx.try_recv() {
            Ok(result) => Poll::Ready(Some(result)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }
}

/// Waits up to `step` for `reply`, driving `rt` meanwhile if given; `None` if it is not
/// there yet.
fn wait_step(
    rt: Option<&tokio::runtime::Runtime>,
    reply: &mut Reply,
    step: Duration,
) -> Option<Waited> {
    match rt {
        Some(rt) => match rt.block_on(async { tokio::time::timeout(step, &mut *reply).await }) {
            Ok(Some(result)) => Some(Waited::Done(result)),
            Ok(None) => Some(Waited::Died),
            Err(_) => None,
        },
        None => match reply.rx.recv_timeout(step) {
            Ok(result) => Some(Waited::Done(result)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Waited::Died),
        },
    }
}

/// How waiting for a call ended.
enum Waited {
    Done(CallResult),
    Timeout,
    Died,
}

impl Host {
    /// Hands `task` to the call thread, starting one if there is none (or it died). The
    /// task runs in the worker's runtime unless the caller cannot drive it (it runs inside
    /// a tokio runtime itself). Returns whether the caller is to drive it.
    fn submit(&self, task: Task) -> std::io::Result<bool> {
        let driven = tokio::runtime::Handle::try_current().is_err();
        let mut slot = self.worker.borrow_mut();
        let task = match slot.as_ref() {
            Some(worker) => match worker.tx.send((task, driven)) {
                Ok(()) => return Ok(driven),
                Err(mpsc::SendError((task, _))) => task,
            },
            None => task,
        };
        let worker = Worker::spawn()?;
        // A fresh worker's receiver is alive, so this cannot fail; if it did, the reply
        // channel would be dropped and the caller would see a failed call, not a hang.
        let _ = worker.tx.send((task, driven));
        *slot = Some(worker);
        Ok(driven)
    }

    /// Waits up to `limit` for `reply`, driving the worker's runtime when `driven` and
    /// advancing the epoch every [`EPOCH_TICK`].
    fn wait(&self, reply: &mut Reply, limit: Duration, driven: bool) -> Waited {
        let slot = self.worker.borrow();
        let rt = slot.as_ref().and_then(|w| w.rt.as_ref()).filter(|_| driven);
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Waited::Timeout;
            }
            if let Some(waited) = wait_step(rt, reply, left.min(EPOCH_TICK)) {
                return waited;
            }
            self.engine.increment_epoch();
        }
    }

    /// Gives up the current worker. A thread of its own keeps advancing the epoch and
    /// driving the worker's runtime (timers in a blocked host call must still fire) until
    /// the call ends, so that the call traps at its next epoch check.
    fn abandon(&self, mut reply: Reply) {
        let rt = self
            .worker
            .borrow_mut()
            .take()
            .and_then(|mut worker| worker.rt.take());
        let engine = self.engine.clone();
        let spawned = thread::Builder::new()
            .name("rwasm-plugin-drain".to_string())
            .spawn(move || {
                while wait_step(rt.as_ref(), &mut reply, EPOCH_TICK).is_none() {
                    engine.increment_epoch();
                }
                if let Some(rt) = rt {
                    rt.shutdown_background();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread to finish the abandoned call");
        }
    }

    /// Prepare, configure and invoke phases of one call of `spec`'s plugin.
    pub(crate) fn call(
        &self,
        loaded: &Loaded,
        spec: &PluginSpec,
        point: HookPoint,
        call: &Call,
    ) -> Result<Outcome, (Phase, FailureCause)> {
        let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true);
        for grant in &spec.dirs {
            let perms = if grant.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            let grant_err = |reason: String| {
                (
                    Phase::Prepare,
                    FailureCause::Grant {
                        host: grant.host.clone(),
                        guest: grant.guest.clone(),
                        reason,
                    },
                )
            };
            match fs::metadata(&grant.host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(grant_err("not a directory".to_string())),
                Err(e) => return Err(grant_err(e.to_string())),
            }
            builder
                .preopened_dir(&grant.host, &grant.guest, perms)
                .map_err(|e| grant_err(describe(&e)))?;
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(spec.memory_limit).unwrap_or(usize::MAX))
            .memories(MAX_MEMORIES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .trap_on_grow_failure(true)
            .build();
        let job = Job {
            engine: loaded.engine.clone(),
            pre: loaded.pre.clone(),
            state: HostState {
                wasi: builder.build(),
                table: ResourceTable::new(),
                limits: Limits {
                    inner: limits,
                    limit: spec.memory_limit,
                    exceeded: false,
                },
                plugin: spec.name.clone(),
                point,
                log_calls: 0,
            },
            config: spec.config.iter().map(config_entry).collect(),
            call: call.call.clone(),
            timeout_ms: spec.timeout_ms,
            memory_limit: spec.memory_limit,
            fuel: if loaded.fuel {
                Some(spec.fuel.unwrap_or(u64::MAX))
            } else {
                None
            },
            phase: PhaseCell::new(),
        };
        let phase = job.phase.clone();

        let started = Instant::now();
        let (replier, mut reply) = reply_channel();
        let span = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let driven = self
            .submit(Box::new(move || {
                let result =
                    tracing::dispatcher::with_default(&dispatch, || span.in_scope(|| job.run()));
                replier.send(result);
            }))
            .map_err(|source| (Phase::Prepare, FailureCause::Thread { source }))?;
        let limit = Duration::from_millis(spec.timeout_ms) + WATCHDOG_GRACE;
        let result = match self.wait(&mut reply, limit, driven) {
            Waited::Done(result) => result,
            Waited::Timeout => {
                tracing::warn!("plugin call blocked past its deadline; abandoning its thread");
                self.abandon(reply);
                Err((
                    phase.get(),
                    FailureCause::Deadline {
                        timeout_ms: spec.timeout_ms,
                    },
                ))
            }
            Waited::Died => {
                self.worker.borrow_mut().take();
                Err((
                    phase.get(),
                    FailureCause::Trap {
                        message: "the plugin call thread panicked".to_string(),
                        stderr_tail: String::new(),
                    },
                ))
            }
        };
        tracing::debug!(
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "plugin call finished"
        );

        let failed = result.is_err();
        forward_output("stdout", &stdout.contents(), failed);
        let err_bytes = stderr.contents();
        forward_output("stderr", &err_bytes, failed);
        result.map_err(|(phase, cause)| {
            let cause = match cause {
                FailureCause::Trap { message, .. } => FailureCause::Trap {
                    message,
                    stderr_tail: tail(&err_bytes, STDERR_TAIL_BYTES),
                },
                other => other,
            };
            (phase, cause)
        })
    }
}

/// Copies captured guest output into the log, one event per line.
fn forward_output(stream: &str, bytes: &[u8], failed: bool) {
    if bytes.is_empty() {
        return;
    }
    for line in String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        if failed {
            tracing::warn!(stream, "guest: {line}");
        } else {
            tracing::debug!(stream, "guest: {line}");
        }
    }
}

/// The last `max` bytes of `bytes` as trimmed text.
fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn config_entry((key, value): &(String, ConfigValue)) -> wit::ConfigEntry {
    wit::ConfigEntry {
        key: key.clone(),
        value: match value {
            ConfigValue::Text(s) => wit::ConfigValue::Text(s.clone()),
            ConfigValue::Integer(i) => wit::ConfigValue::Integer(*i),
            ConfigValue::Float(f) => wit::ConfigValue::Float(*f),
            ConfigValue::Boolean(b) => wit::ConfigValue::Boolean(*b),
            ConfigValue::Texts(t) => wit::ConfigValue::Texts(t.clone()),
        },
    }
}

/// Everything one call needs, moved onto its thread.
struct Job {
    engine: Engine,
    pre: bindings::HookPre<HostState>,
    state: HostState,
    config: Vec<wit::ConfigEntry>,
    call: wit::HookCall,
    timeout_ms: u64,
    memory_limit: u64,
    fuel: Option<u64>,
    phase: PhaseCell,
}

impl Job {
    fn run(self) -> Result<Outcome, (Phase, FailureCause)> {
        let Job {
            engine,
            pre,
            state,
            config,
            call,
            timeout_ms,
            memory_limit,
            fuel,
            phase,
        } = self;
        let classify = |store: &Store<HostState>, e: wasmtime::Error| {
            if store.data().limits.exceeded {
                return FailureCause::MemoryLimit {
                    limit_bytes: memory_limit,
                };
            }
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => FailureCause::Deadline { timeout_ms },
                Some(Trap::OutOfFuel) => FailureCause::OutOfFuel {
                    fuel: fuel.unwrap_or(u64::MAX),
                },
                Some(trap) => FailureCause::Trap {
                    message: trap.to_string(),
                    stderr_tail: String::new(),
                },
                None => FailureCause::Trap {
                    message: e.root_cause().to_string(),
                    stderr_tail: String::new(),
                },
            }
        };

        let mut store = Store::new(&engine, state);
        store.limiter(|s| &mut s.limits);
        // One more tick than the timeout needs, so the guest always gets its full time.
        store.set_epoch_deadline(timeout_ms.div_ceil(EPOCH_TICK_MS) + 1);
        store.epoch_deadline_trap();
        if let Some(fuel) = fuel {
            store.set_fuel(fuel).map_err(|e| {
                (
                    Phase::Prepare,
                    FailureCause::Engine {
                        reason: describe(&e),
                    },
                )
            })?;
        }
        phase.set(Phase::Prepare);
        let hook = pre
            .instantiate(&mut store)
            .map_err(|e| (Phase::Prepare, classify(&store, e)))?;
        let hooks = hook.rwasm_plugin_hooks();

        phase.set(Phase::Configure);
        match hooks.call_configure(&mut store, &config) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err((
                    Phase::Configure,
                    FailureCause::Guest {
                        message: truncate(message, MAX_STRING_BYTES),
                    },
                ));
            }
            Err(e) => return Err((Phase::Configure, classify(&store, e))),
        }

        phase.set(Phase::Invoke);
        match hooks.call_invoke(&mut store, &call) {
            Ok(Ok(wit::Verdict::Allow(adj))) => Ok(Outcome::Allow(Adjustment {
                env: adj.env,
                annotations: adj.annotations,
                mounts: adj
                    .mounts
                    .into_iter()
                    .map(|m| MountRequest {
                        destination: m.destination,
                        source: m.source,
                        typ: m.type_,
                        options: m.options,
                    })
                    .collect(),
            })),
            Ok(Ok(wit::Verdict::Deny(reason))) => {
                Ok(Outcome::Deny(truncate(reason, MAX_STRING_BYTES)))
            }
            Ok(Err(message)) => Err((
                Phase::Invoke,
                FailureCause::Guest {
                    message: truncate(message, MAX_STRING_BYTES),
                },
            )),
            Err(e) => Err((Phase::Invoke, classify(&store, e))),
        }
    }
}

/// A store's data: WASI, limits and who is calling, for the `log` import.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    plugin: String,
    point: HookPoint,
    log_calls: u32,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for HostState {}

impl wit_host::Host for HostState {
    fn log(&mut self, level: wit_host::Level, message: String) {
        self.log_calls = self.log_calls.saturating_add(1);
        if self.log_calls > MAX_LOG_CALLS {
            if self.log_calls == MAX_LOG_CALLS + 1 {
                tracing::warn!(
                    plugin = %self.plugin,
                    hook = %self.point,
                    "more than {MAX_LOG_CALLS} log lines in one call; dropping the rest"
                );
            }
            return;
        }
        let message = truncate(message, MAX_LOG_BYTES);
        let (plugin, hook) = (&self.plugin, self.point);
        match level {
            wit_host::Level::Trace => tracing::trace!(plugin = %plugin, hook = %hook, "{message}"),
            wit_host::Level::Debug => tracing::debug!(plugin = %plugin, hook = %hook, "{message}"),
            wit_host::Level::Info => tracing::info!(plugin = %plugin, hook = %hook, "{message}"),
            wit_host::Level::Warn => tracing::warn!(plugin = %plugin, hook = %hook, "{message}"),
            wit_host::Level::Error => tracing::error!(plugin = %plugin, hook = %hook, "{message}"),
        }
    }
}

/// [`StoreLimits`] that remembers whether the memory cap was hit, so that the resulting
/// trap is reported as the memory limit and not as a generic trap.
struct Limits {
    inner: StoreLimits,
    limit: u64,
    exceeded: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.exceeded = true;
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
