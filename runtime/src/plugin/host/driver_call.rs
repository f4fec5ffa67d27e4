//! What every driver (network, storage, volume) shares: the load phase
//! ([`Host::load_driver`]), and around each call, arming the store's limits (deadline,
//! memory limiter, epoch deadline, fuel) and turning a wasmtime error into the
//! [`FailureCause`] the manifest's limits explain.

use std::time::{Duration, Instant};

use wasmtime::component::InstancePre;
use wasmtime::{Store, Trap};

use super::super::manifest::PluginSpec;
use super::super::{FailureCause, Phase};
use super::state::HostState;
use super::{EPOCH_TICK_MS, Host, Origin, describe};

/// What a driver kind tells [`Host::load_driver`]: how to check its exports, the host
/// interface it may import besides a hook's imports, the cause of a link error, and how to
/// make its typed pre-instance `P` (the bindings' `...DriverPre::new`).
pub(super) struct DriverKind<P> {
    /// Refuses a component that does not export the kind's world (names the interface).
    pub check_exports: fn(&[String]) -> Result<(), FailureCause>,
    /// The kind's host interface, e.g. `rwasm:plugin/net-host@0.3.0`.
    pub host_import: &'static str,
    /// The failure of linking the component, from wasmtime's reason.
    pub link: fn(String) -> FailureCause,
    /// The typed pre-instance from the linked one.
    pub pre: fn(InstancePre<HostState>) -> wasmtime::Result<P>,
}

impl Host {
    /// Load phase of a driver of `kind`: compile or load from the cache, check its exports
    /// and its imports (those of a hook, as `spec`'s grants allow, plus the kind's host
    /// interface), then link it.
    pub(super) fn load_driver<P>(
        &self,
        spec: &PluginSpec,
        cache_dir: &std::path::Path,
        kind: &DriverKind<P>,
    ) -> Result<(P, Origin), FailureCause> {
        let (component, origin) = self.component(&spec.path, cache_dir)?;
        let names = self.interfaces(&component);
        (kind.check_exports)(&names.exports)?;
        super::grants::check_imports(
            &spec.sandbox,
            names
                .imports
                .iter()
                .map(String::as_str)
                .filter(|i| *i != kind.host_import),
        )?;
        let link = |e: wasmtime::Error| (kind.link)(describe(&e));
        let instance = self.linker.instantiate_pre(&component).map_err(link)?;
        Ok(((kind.pre)(instance).map_err(link)?, origin))
    }
}

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
