//! A store's data and the host functions every plugin may import.

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::super::HookPoint;
use super::super::manifest::PluginSpec;
use super::bindings::rwasm::plugin::{host as wit_host, types as wit};
use super::bindings_v0_1::rwasm::plugin::{host as wit1_host, types as wit1};
use super::bindings_v0_2::rwasm::plugin::host as wit2_host;
use super::worker::truncate;
use super::{MAX_LOG_BYTES, MAX_LOG_CALLS, MAX_MEMORIES, MAX_TABLE_ELEMENTS};

/// A store's data: WASI, limits and who is calling, for the `log` import.
pub(super) struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: Limits,
    pub(super) plugin: String,
    pub(super) point: HookPoint,
    pub(super) log_calls: u32,
    /// When the call must end (its `timeout-ms` from its start); clock waits end by then.
    pub(super) deadline: Option<std::time::Instant>,
    /// A clock wait was cut short at the deadline (see `clock`).
    pub(super) overslept: bool,
    /// A warm-up (`Host::warm`): the guest's `log` calls are dropped, so that a plugin
    /// logging at configure is not heard twice.
    pub(super) quiet: bool,
    /// The `net-host` capability of a network driver call; `None` for hooks.
    pub(super) net: Option<super::NetCtx>,
    /// The `storage-host` capability of a storage driver call; `None` otherwise.
    pub(super) storage: Option<super::storage_ctx::StorageCtx>,
    /// The `volume-host` capability of a volume driver call; `None` otherwise.
    pub(super) vol: Option<super::volume::VolCtx>,
}

impl HostState {
    /// The store data of one call of `spec`'s plugin at `point`: `wasi` (see
    /// `grants::wasi_ctx`), a memory cap of `memory-limit` bytes per linear memory (at most
    /// [`MAX_MEMORIES`] memories, [`MAX_TABLE_ELEMENTS`] table elements, growth past them
    /// traps), no deadline yet.
    pub(super) fn new(wasi: WasiCtx, spec: &PluginSpec, point: HookPoint) -> HostState {
        let inner = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(spec.memory_limit).unwrap_or(usize::MAX))
            .memories(MAX_MEMORIES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits: Limits {
                inner,
                limit: spec.memory_limit,
                exceeded: false,
            },
            plugin: spec.name.clone(),
            point,
            log_calls: 0,
            deadline: None,
            overslept: false,
            quiet: false,
            net: None,
            storage: None,
            vol: None,
        }
    }
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

impl wit1::Host for HostState {}

impl wit1_host::Host for HostState {
    fn log(&mut self, level: wit1_host::Level, message: String) {
        let level = match level {
            wit1_host::Level::Trace => wit_host::Level::Trace,
            wit1_host::Level::Debug => wit_host::Level::Debug,
            wit1_host::Level::Info => wit_host::Level::Info,
            wit1_host::Level::Warn => wit_host::Level::Warn,
            wit1_host::Level::Error => wit_host::Level::Error,
        };
        wit_host::Host::log(self, level, message);
    }
}

impl wit2_host::Host for HostState {
    fn log(&mut self, level: wit2_host::Level, message: String) {
        let level = match level {
            wit2_host::Level::Trace => wit_host::Level::Trace,
            wit2_host::Level::Debug => wit_host::Level::Debug,
            wit2_host::Level::Info => wit_host::Level::Info,
            wit2_host::Level::Warn => wit_host::Level::Warn,
            wit2_host::Level::Error => wit_host::Level::Error,
        };
        wit_host::Host::log(self, level, message);
    }
}

impl wit_host::Host for HostState {
    fn log(&mut self, level: wit_host::Level, message: String) {
        if self.quiet {
            return;
        }
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
pub(super) struct Limits {
    pub(super) inner: StoreLimits,
    pub(super) limit: u64,
    pub(super) exceeded: bool,
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
