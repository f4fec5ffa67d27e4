//! The call path: a plugin call runs inline on the calling thread (no filesystem grants)
//! or on a worker thread watched by the caller (see the module `host`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use oci_spec::runtime::{Spec, State};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::super::adjust::MAX_STRING_BYTES;
use super::super::manifest::PluginSpec;
use super::super::{FailureCause, HookPoint, Phase};
use super::bindings::rwasm::plugin::types as wit;
use super::state::HostState;

/// The deadline of a warm-up ([`Host::warm`]), in milliseconds (the plugin's own
/// `timeout-ms` if shorter): a plugin slow to configure delays the background load, and so
/// the container's first hook point, by at most this.
const WARM_DEADLINE_MS: u64 = 20;
use super::{
    Call, EPOCH_TICK, EPOCH_TICK_MS, Host, Loaded, Outcome, Pre, STDERR_TAIL_BYTES,
    STDOUT_CAPACITY, Ticker, WATCHDOG_GRACE, convert, describe,
};

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
pub(super) struct Worker {
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
            Ok(Some(result)) => Some(Waited::Done(Box::new(result))),
            Ok(None) => Some(Waited::Died),
            Err(_) => None,
        },
        None => match reply.rx.recv_timeout(step) {
            Ok(result) => Some(Waited::Done(Box::new(result))),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Waited::Died),
        },
    }
}

/// How waiting for a call ended.
enum Waited {
    Done(Box<CallResult>),
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
    /// advancing the epoch every [`EPOCH_TICK`] itself (the cheapest: no other thread
    /// wakes) — unless an abandoned call keeps the ticker active, which then is the one
    /// source of the epoch.
    fn wait(&self, reply: &mut Reply, limit: Duration, driven: bool) -> Waited {
        let ticking = self
            .ticker
            .get()
            .filter(|t| t.is_active())
            .map(Ticker::activate);
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
            if ticking.is_none() {
                self.engine.increment_epoch();
            }
        }
    }

    /// Gives up the current worker. A thread of its own keeps the epoch ticker active and
    /// drives the worker's runtime (timers in a blocked host call must still fire) until
    /// the call ends, so that the call traps at its next epoch check.
    fn abandon(&self, mut reply: Reply, plugin: &str) {
        let blocked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        self.blocked
            .borrow_mut()
            .insert(plugin.to_string(), blocked.clone());
        let rt = self
            .worker
            .borrow_mut()
            .take()
            .and_then(|mut worker| worker.rt.take());
        let engine = self.engine.clone();
        let ticking = self.ticker().ok().map(Ticker::activate);
        let spawned = thread::Builder::new()
            .name("rwasm-plugin-drain".to_string())
            .spawn(move || {
                while wait_step(rt.as_ref(), &mut reply, EPOCH_TICK).is_none() {
                    if ticking.is_none() {
                        engine.increment_epoch();
                    }
                }
                drop(ticking);
                blocked.store(false, std::sync::atomic::Ordering::Release);
                if let Some(rt) = rt {
                    rt.shutdown_background();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread to finish the abandoned call");
        }
    }

    /// Whether a call of `plugin` abandoned at its deadline is still running.
    fn still_blocked(&self, plugin: &str) -> bool {
        self.blocked
            .borrow()
            .get(plugin)
            .is_some_and(|b| b.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Warm-up, on the background load thread (`PluginSet::prefetch`), of a plugin that
    /// runs inline (no filesystem grants): one throwaway instance, instantiated and
    /// configured (a phase without side effects, STYLE.md 8) under a deadline of at most
    /// [`WARM_DEADLINE_MS`], then dropped. Every real call still gets a fresh instance; the
    /// warm-up only moves this process's one-time costs off the container's path: the epoch
    /// ticker and its runtime, the first touch of the component's code pages, wasmtime's
    /// lazy per-process state. Its result is only logged (at debug level): a plugin whose
    /// configure fails, traps or is slow fails its real call, where the error is reported.
    pub(crate) fn warm(&self, loaded: &Loaded, spec: &PluginSpec) {
        let Some(point) = spec.hooks.first().copied() else {
            return;
        };
        if spec.has_fs_grants() || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let started = Instant::now();
        let result = configure_call(point).and_then(|call| {
            let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
            let stderr = MemoryOutputPipe::new(STDOUT_CAPACITY);
            let mut spec = spec.clone();
            spec.timeout_ms = spec.timeout_ms.min(WARM_DEADLINE_MS);
            self.job(loaded, &spec, point, &call, &stdout, &stderr, true)
                .and_then(|job| match job {
                    Some(mut job) => {
                        job.state.quiet = true;
                        self.inline(job)
                    }
                    None => Ok(Outcome::Allow(Box::default())),
                })
        });
        tracing::debug!(
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            failed = result.is_err(),
            "plugin warmed up"
        );
    }

    /// The job of one call (or, with `configure_only`, of its first two phases) of `spec`'s
    /// plugin; `None` for a call its package version cannot express (never registered: the
    /// manifest check refuses it).
    #[allow(clippy::too_many_arguments)] // the parts of one call, all needed
    fn job(
        &self,
        loaded: &Loaded,
        spec: &PluginSpec,
        point: HookPoint,
        call: &Call,
        stdout: &MemoryOutputPipe,
        stderr: &MemoryOutputPipe,
        configure_only: bool,
    ) -> Result<Option<Job>, (Phase, FailureCause)> {
        // Configuring needs no container: no rootfs is preopened then.
        let container = (!configure_only).then_some(call);
        let wasi = super::grants::wasi_ctx(spec, container, stdout, stderr)
            .map_err(|cause| (Phase::Prepare, cause))?;
        Ok(Some(Job {
            engine: loaded.engine.clone(),
            pre: loaded.pre.clone(),
            state: HostState::new(wasi, spec, point),
            call: match &loaded.pre {
                Pre::V0_3(_) | Pre::V0_2(_) => Versioned::Current(
                    spec.config.iter().map(convert::config_entry).collect(),
                    Box::new(call.call.clone()),
                ),
                Pre::V0_1(_) => match call.v0_1() {
                    Some(old) => Versioned::V0_1(
                        spec.config.iter().map(convert::config_entry_v0_1).collect(),
                        old,
                    ),
                    None => return Ok(None),
                },
            },
            timeout_ms: spec.timeout_ms,
            memory_limit: spec.memory_limit,
            fuel: if loaded.fuel {
                Some(spec.fuel.unwrap_or(u64::MAX))
            } else {
                None
            },
            phase: PhaseCell::new(),
            configure_only,
        }))
    }

    /// Prepare, configure and invoke phases of one call of `spec`'s plugin.
    pub(crate) fn call(
        &self,
        loaded: &Loaded,
        spec: &PluginSpec,
        point: HookPoint,
        call: &Call,
    ) -> Result<Outcome, (Phase, FailureCause)> {
        self.run(loaded, spec, point, call, false)
    }

    /// The prepare and configure phases only, on a throwaway instance, with the plugin's
    /// limits and grants as for a call at its first hook point (a plugin with no hook point
    /// is not configured): for `rwasm plugin validate`.
    pub(crate) fn configure(
        &self,
        loaded: &Loaded,
        spec: &PluginSpec,
    ) -> Result<(), (Phase, FailureCause)> {
        let Some(point) = spec.hooks.first().copied() else {
            return Ok(());
        };
        let call = configure_call(point)?;
        self.run(loaded, spec, point, &call, true).map(|_| ())
    }

    /// A call, or with `configure_only` its prepare and configure phases.
    fn run(
        &self,
        loaded: &Loaded,
        spec: &PluginSpec,
        point: HookPoint,
        call: &Call,
        configure_only: bool,
    ) -> Result<Outcome, (Phase, FailureCause)> {
        let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDOUT_CAPACITY);
        // The manifest check refuses a registration the plugin's version cannot express;
        // such a call is never made.
        let Some(job) = self.job(loaded, spec, point, call, &stdout, &stderr, configure_only)?
        else {
            return Ok(Outcome::Allow(Box::default()));
        };
        let phase = job.phase.clone();

        let started = Instant::now();
        if !spec.has_fs_grants() && tokio::runtime::Handle::try_current().is_err() {
            let result = self.inline(job);
            tracing::debug!(
                elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "plugin call finished (inline)"
            );
            let result =
                result.and_then(|outcome| super::limits::check_answer(outcome, spec.max_answer));
            return finish(result, &stdout, &stderr);
        }
        if self.still_blocked(&spec.name) {
            return Err((Phase::Prepare, FailureCause::StillBlocked));
        }
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
            Waited::Done(result) => *result,
            Waited::Timeout => {
                tracing::warn!("plugin call blocked past its deadline; abandoning its thread");
                self.abandon(reply, &spec.name);
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

        let result =
            result.and_then(|outcome| super::limits::check_answer(outcome, spec.max_answer));
        finish(result, &stdout, &stderr)
    }

    /// The epoch ticker, started on first use.
    pub(super) fn ticker(&self) -> std::io::Result<&Ticker> {
        if let Some(t) = self.ticker.get() {
            return Ok(t);
        }
        let t = Ticker::spawn(self.engine.clone())?;
        Ok(self.ticker.get_or_init(|| t))
    }

    /// Runs `job` on this thread, in the ticker's runtime, with the epoch ticking.
    fn inline(&self, job: Job) -> CallResult {
        let ticker = self
            .ticker()
            .map_err(|source| (Phase::Prepare, FailureCause::Thread { source }))?;
        let _runtime = ticker.handle().enter();
        let _ticking = ticker.activate();
        job.run()
    }
}

/// The call a configure-only job carries (it is never invoked): `point` with an empty
/// state and spec, outside any container.
fn configure_call(point: HookPoint) -> Result<Call, (Phase, FailureCause)> {
    Call::new(point, &State::default(), &Spec::default(), None).map_err(|e| {
        (
            Phase::Prepare,
            FailureCause::Engine {
                reason: e.to_string(),
            },
        )
    })
}

/// Forwards the guest's output to the log and adds its stderr's tail to a trap.
fn finish(result: CallResult, stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe) -> CallResult {
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

/// The configuration and call, in the package version of the plugin.
enum Versioned {
    /// 0.3.0 and 0.2.0, whose hook types are the same (see `bindings_v0_2`).
    Current(Vec<wit::ConfigEntry>, Box<wit::HookCall>),
    V0_1(
        Vec<super::bindings_v0_1::rwasm::plugin::types::ConfigEntry>,
        super::bindings_v0_1::rwasm::plugin::types::HookCall,
    ),
}

/// Everything one call needs, moved onto its thread.
struct Job {
    engine: Engine,
    pre: Pre,
    state: HostState,
    call: Versioned,
    timeout_ms: u64,
    memory_limit: u64,
    fuel: Option<u64>,
    phase: PhaseCell,
    /// Instantiate and configure only, no invoke (a warm-up, see [`Host::warm`], or
    /// [`Host::configure`]).
    configure_only: bool,
}

impl Job {
    fn run(self) -> Result<Outcome, (Phase, FailureCause)> {
        let timeout_ms = self.timeout_ms;
        let (result, overslept) = self.run_store();
        match result {
            // A clock wait was cut short at the deadline and the guest then finished: it
            // would have overrun its deadline.
            Ok(_) if overslept => Err((Phase::Invoke, FailureCause::Deadline { timeout_ms })),
            other => other,
        }
    }

    /// The call, and whether a clock wait was cut short at the deadline.
    fn run_store(self) -> (Result<Outcome, (Phase, FailureCause)>, bool) {
        let mut overslept = None;
        let result = self.run_in(&mut overslept);
        (result, overslept.unwrap_or(false))
    }

    /// Store, instance, configure and invoke; sets `overslept` from the store at the end.
    fn run_in(self, overslept: &mut Option<bool>) -> Result<Outcome, (Phase, FailureCause)> {
        let Job {
            engine,
            pre,
            state,
            call,
            timeout_ms,
            memory_limit,
            fuel,
            phase,
            configure_only,
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

        let mut state = state;
        state.deadline = Some(Instant::now() + Duration::from_millis(timeout_ms));
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
        let guest = |message: String| FailureCause::Guest {
            message: truncate(message, MAX_STRING_BYTES),
        };
        let deny = |reason: String| Outcome::Deny(truncate(reason, MAX_STRING_BYTES));
        // The configure-then-invoke sequence of 0.3.0 and 0.2.0 guests, whose bindings are
        // distinct types over the same hook types.
        macro_rules! current_hooks {
            ($hooks:expr, $config:ident, $call:ident) => {{
                let hooks = $hooks;
                let (config, call) = (&$config, &$call);

                phase.set(Phase::Configure);
                match hooks.call_configure(&mut store, config) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err((Phase::Configure, guest(convert::error_message(e)))),
                    Err(e) => return Err((Phase::Configure, classify(&store, e))),
                }
                if configure_only {
                    return Ok(Outcome::Allow(Box::default()));
                }
                phase.set(Phase::Invoke);
                match hooks.call_invoke(&mut store, call) {
                    Ok(Ok(wit::Verdict::Allow(adj))) => {
                        Ok(Outcome::Allow(Box::new(convert::adjustment(adj))))
                    }
                    Ok(Ok(wit::Verdict::Deny(reason))) => Ok(deny(reason)),
                    Ok(Err(e)) => Err((Phase::Invoke, guest(convert::error_message(e)))),
                    Err(e) => Err((Phase::Invoke, classify(&store, e))),
                }
            }};
        }
        let result = match (pre, call) {
            (Pre::V0_3(pre), Versioned::Current(config, call)) => {
                let hook = pre
                    .instantiate(&mut store)
                    .map_err(|e| (Phase::Prepare, classify(&store, e)))?;
                current_hooks!(hook.rwasm_plugin_hooks(), config, call)
            }
            (Pre::V0_2(pre), Versioned::Current(config, call)) => {
                let hook = pre
                    .instantiate(&mut store)
                    .map_err(|e| (Phase::Prepare, classify(&store, e)))?;
                current_hooks!(hook.rwasm_plugin_hooks(), config, call)
            }
            (Pre::V0_1(pre), Versioned::V0_1(config, call)) => {
                use super::bindings_v0_1::rwasm::plugin::types as wit1;
                let hook = pre
                    .instantiate(&mut store)
                    .map_err(|e| (Phase::Prepare, classify(&store, e)))?;
                let hooks = hook.rwasm_plugin_hooks();
                phase.set(Phase::Configure);
                match hooks.call_configure(&mut store, &config) {
                    Ok(Ok(())) => {}
                    Ok(Err(message)) => return Err((Phase::Configure, guest(message))),
                    Err(e) => return Err((Phase::Configure, classify(&store, e))),
                }
                if configure_only {
                    return Ok(Outcome::Allow(Box::default()));
                }
                phase.set(Phase::Invoke);
                match hooks.call_invoke(&mut store, &call) {
                    Ok(Ok(wit1::Verdict::Allow(adj))) => {
                        Ok(Outcome::Allow(Box::new(convert::adjustment_v0_1(adj))))
                    }
                    Ok(Ok(wit1::Verdict::Deny(reason))) => Ok(deny(reason)),
                    Ok(Err(message)) => Err((Phase::Invoke, guest(message))),
                    Err(e) => Err((Phase::Invoke, classify(&store, e))),
                }
            }
            _ => Err((
                Phase::Prepare,
                FailureCause::Engine {
                    reason: "internal error: call encoded for another package version".to_string(),
                },
            )),
        };
        *overslept = Some(store.data().overslept);
        result
    }
}

impl Host {
    /// For the microbenchmark (`plugin::bench`): instantiates the plugin once, configures
    /// it, then times `n` `invoke` calls on that live instance, inline with the epoch
    /// ticking, each with a fresh deadline. Only for plugins of the current package
    /// version without filesystem grants (the production inline path).
    pub(crate) fn live_calls(
        &self,
        loaded: &Loaded,
        spec: &PluginSpec,
        point: HookPoint,
        call: &Call,
        n: usize,
    ) -> Result<Vec<Duration>, (Phase, FailureCause)> {
        let unsupported = |reason: &str| {
            (
                Phase::Prepare,
                FailureCause::Engine {
                    reason: reason.to_string(),
                },
            )
        };
        if spec.has_fs_grants() {
            return Err(unsupported(
                "the live-instance benchmark takes plugins without filesystem grants",
            ));
        }
        let Pre::V0_3(pre) = &loaded.pre else {
            return Err(unsupported(
                "the live-instance benchmark takes rwasm:plugin@0.3.0 plugins",
            ));
        };
        let ticker = self
            .ticker()
            .map_err(|source| (Phase::Prepare, FailureCause::Thread { source }))?;
        let _runtime = ticker.handle().enter();
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(MemoryOutputPipe::new(STDOUT_CAPACITY))
            .stderr(MemoryOutputPipe::new(STDOUT_CAPACITY));
        let state = HostState::new(builder.build(), spec, point);
        let engine_err = |phase| {
            move |e: wasmtime::Error| {
                (
                    phase,
                    FailureCause::Engine {
                        reason: describe(&e),
                    },
                )
            }
        };
        let mut store = Store::new(&loaded.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = spec.timeout_ms.div_ceil(EPOCH_TICK_MS) + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        if loaded.fuel {
            store
                .set_fuel(spec.fuel.unwrap_or(u64::MAX))
                .map_err(engine_err(Phase::Prepare))?;
        }
        let hook = pre
            .instantiate(&mut store)
            .map_err(engine_err(Phase::Prepare))?;
        let hooks = hook.rwasm_plugin_hooks();
        let config: Vec<_> = spec.config.iter().map(convert::config_entry).collect();
        let _ticking = ticker.activate();
        hooks
            .call_configure(&mut store, &config)
            .map_err(engine_err(Phase::Configure))?
            .map_err(|e| {
                (
                    Phase::Configure,
                    FailureCause::Guest {
                        message: convert::error_message(e),
                    },
                )
            })?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            store.set_epoch_deadline(ticks);
            store.data_mut().deadline = Some(started + Duration::from_millis(spec.timeout_ms));
            hooks
                .call_invoke(&mut store, &call.call)
                .map_err(engine_err(Phase::Invoke))?
                .map_err(|e| {
                    (
                        Phase::Invoke,
                        FailureCause::Guest {
                            message: convert::error_message(e),
                        },
                    )
                })?;
            samples.push(started.elapsed());
        }
        Ok(samples)
    }
}
