//! The epoch ticker: one thread per host, started with the first inline or abandoned call,
//! that advances the engine's epoch every [`EPOCH_TICK`] while a call is active and waits
//! on a condition variable otherwise (no wakeups between calls).
//!
//! It also drives the host's current-thread tokio runtime while it ticks, which the
//! calling thread enters around a call: wasmtime-wasi's sync host functions then run
//! their futures on it (`Handle::block_on` on the calling thread), and their timers fire,
//! because a current-thread runtime's timers only advance while some thread is inside
//! `Runtime::block_on` — here the ticker's sleep between two ticks.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use wasmtime::Engine;

use super::EPOCH_TICK;

/// Whether calls are active, and whether the ticker is to exit.
#[derive(Default)]
struct Flags {
    active: usize,
    stop: bool,
}

struct Shared {
    flags: Mutex<Flags>,
    wake: Condvar,
    rt: tokio::runtime::Runtime,
}

/// The ticker of one host; dropping it stops the thread after its current tick.
pub(super) struct Ticker {
    shared: Arc<Shared>,
}

/// Keeps the ticker ticking while it lives: one per inline call, per abandoned call still
/// running, and per wait for a worker's call while such an abandoned call runs (so the
/// epoch never has two sources at once, and every deadline means wall-clock time).
pub(super) struct Active {
    shared: Arc<Shared>,
}

impl Ticker {
    /// Starts the ticker thread for `engine` (parked until the first [`Ticker::activate`]).
    pub(super) fn spawn(engine: Engine) -> std::io::Result<Ticker> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()?;
        let shared = Arc::new(Shared {
            flags: Mutex::new(Flags::default()),
            wake: Condvar::new(),
            rt,
        });
        let theirs = shared.clone();
        thread::Builder::new()
            .name("rwasm-epoch".to_string())
            .spawn(move || tick(&theirs, &engine))?;
        Ok(Ticker { shared })
    }

    /// The runtime the calling thread enters around an inline call.
    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        self.shared.rt.handle()
    }

    /// Whether some call keeps the ticker ticking now.
    pub(super) fn is_active(&self) -> bool {
        self.shared
            .flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .active
            > 0
    }

    /// Marks a call active: the epoch advances until the returned guard is dropped.
    pub(super) fn activate(&self) -> Active {
        let mut flags = self
            .shared
            .flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        flags.active += 1;
        if flags.active == 1 {
            self.shared.wake.notify_one();
        }
        Active {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let mut flags = self
            .shared
            .flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        flags.active = flags.active.saturating_sub(1);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let mut flags = self
            .shared
            .flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        flags.stop = true;
        self.shared.wake.notify_one();
    }
}

/// The ticker thread: waits for an active call, then ticks (driving the runtime) until
/// none is active.
fn tick(shared: &Shared, engine: &Engine) {
    loop {
        {
            let mut flags = shared.flags.lock().unwrap_or_else(PoisonError::into_inner);
            while flags.active == 0 && !flags.stop {
                flags = shared
                    .wake
                    .wait(flags)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if flags.stop {
                return;
            }
        }
        // The sleep is made inside the runtime: it needs the runtime's timer at creation.
        shared
            .rt
            .block_on(async { tokio::time::sleep(EPOCH_TICK).await });
        engine.increment_epoch();
    }
}
