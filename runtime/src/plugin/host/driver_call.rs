//! What every driver call (network, storage, volume) does around the guest: arm the
//! store's limits (deadline, memory limiter, epoch deadline, fuel) and turn a wasmtime
//! error into the [`FailureCause`] the manifest's limits explain.

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};

use super::super::manifest::PluginSpec;
use super::super::{FailureCause, Phase};
use super::state::HostState;
use super::{EPOCH_TICK_MS, describe};

/// Arms `store` for one call of `spec`: the wall-clock deadline (`timeout-ms`), the memory
/// limiter (`memory-limit`), the epoch deadline that interrupts the guest, and the fuel
/// budget when the engine meters fuel.
pub(super) fn arm(
    store: &mut Store<HostState>,
    spec: &PluginSpec,
    fuel: bool,
) -> Result<(), (Phase, FailureCause)> {
    store.data_mut().deadline = Some(Instant::now() + Duration::from_millis(spec.timeout_ms));
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(spec.timeout_ms.div_ceil(EPOCH_TICK_MS) + 1);
    store.epoch_deadline_trap();
    if fuel {
        store.set_fuel(spec.fuel.unwrap_or(u64::MAX)).map_err(|e| {
            (
                Phase::Prepare,
                FailureCause::Engine {
                    reason: describe(&e),
                },
            )
        })?;
    }
    Ok(())
}

/// Why a driver call failed: its memory limit, its deadline, its fuel, or a trap.
pub(super) fn classify(
    store: &Store<HostState>,
    spec: &PluginSpec,
    e: wasmtime::Error,
) -> FailureCause {
    if store.data().limits.exceeded {
        return FailureCause::MemoryLimit {
            limit_bytes: spec.memory_limit,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => FailureCause::Deadline {
            timeout_ms: spec.timeout_ms,
        },
        Some(Trap::OutOfFuel) => FailureCause::OutOfFuel {
            fuel: spec.fuel.unwrap_or(u64::MAX),
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
}
