//! `wasi:clocks/monotonic-clock` with sleeps bounded by the call's deadline.
//!
//! The epoch interrupts wasm code, never a guest blocked inside a host call. The only
//! blocking host call a plugin without filesystem grants can make is a wait on a clock
//! (`subscribe-duration` / `subscribe-instant`, then `wasi:io/poll`; Rust's
//! `thread::sleep` is exactly that). This shadows the two subscribe functions of
//! wasmtime-wasi's implementation: a wait that would end after the call's deadline ends at
//! the deadline instead, and is remembered ([`HostState::overslept`]), so the guest wakes,
//! the epoch trap fires at its next check, and a guest that finishes right after such a
//! shortened sleep still fails with its deadline (see `Job::run`). `now` and `resolution`
//! are wasmtime-wasi's own, so the WASI context's clock stays what the grants made it.

use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;

use super::state::HostState;

/// Registers the bounded monotonic clock over wasmtime-wasi's (which must be in `linker`
/// already).
pub(super) fn shadow(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = monotonic_clock::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s);
    linker.allow_shadowing(false);
    result
}

impl HostState {
    /// `wanted`, shortened to the time left before the call's deadline (noted in
    /// `overslept` when it was).
    fn bounded(&mut self, wanted: Duration) -> Duration {
        let Some(deadline) = self.deadline else {
            return wanted;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if wanted > left {
            self.overslept = true;
            left
        } else {
            wanted
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl monotonic_clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.clocks())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks())
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.clocks())?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let bounded = self.bounded(Duration::from_nanos(duration));
        monotonic_clock::Host::subscribe_duration(&mut self.clocks(), nanos(bounded))
    }
}
